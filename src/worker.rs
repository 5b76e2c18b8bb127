//! A local stand-in for Lambda's SQS event source mapping: long-polls the transfer queue,
//! hands each batch to the transfer handler as the Lambda SQS event, deletes what succeeded
//! and returns the reported failures to the queue (after a short delay, where AWS would wait
//! for the visibility timeout), so they reach the dead-letter queue after repeated failures.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use filestore_shared::{AppState, metrics};
use serde_json::{Map, Value, json};

use crate::provision::Provisioned;

/// Seconds before a failed message is offered again locally.
pub const RETRY_DELAY_SECS: i32 = 2;
/// Messages per batch, as the event source mapping's default batch size.
pub const BATCH_SIZE: i32 = 10;
/// How long one batch may run, as the transfer function's timeout in the template; a
/// transfer still going then continues in a new message, as on Lambda.
pub const RUN_LIMIT: Duration = Duration::from_secs(900);
/// Batches handled at once. Lambda scales an SQS event source to many concurrent
/// invocations; a single poller would let a burst of uploads queue up behind one copy.
pub const CONCURRENCY: usize = 4;

/// The Lambda SQS event for received messages.
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Runs [`CONCURRENCY`] pollers until the task is dropped.
pub async fn run(state: Arc<AppState>, sqs: aws_sdk_sqs::Client, queues: Provisioned) {
    let mut pollers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        pollers.spawn(poll(state.clone(), sqs.clone(), queues.clone()));
    }
    while pollers.join_next().await.is_some() {}
}

async fn poll(state: Arc<AppState>, sqs: aws_sdk_sqs::Client, queues: Provisioned) {
    let requeue = filestore_transfer::Requeue::new(sqs.clone(), &queues.transfer_queue_url);
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queues.transfer_queue_url)
            .max_number_of_messages(BATCH_SIZE)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receiving from the transfer queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let event = sqs_event(&messages, &queues.transfer_queue_arn, &state.config.region);
        let event: SqsEvent = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "could not build the SQS event");
                continue;
            }
        };
        let limits = filestore_transfer::Limits::until(
            std::time::SystemTime::now() + RUN_LIMIT,
            Some(requeue.clone()),
        );
        // Each batch is one invocation, with an id of its own as Lambda gives it.
        let request_id = uuid::Uuid::new_v4().to_string();
        let batch = filestore_transfer::handler(&state, event, &limits);
        let response = metrics::invocation("transfer", &request_id, batch).await;
        let failed: HashSet<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for message in &messages {
            let (Some(id), Some(receipt)) = (message.message_id(), message.receipt_handle()) else {
                continue;
            };
            let result = if failed.contains(id) {
                sqs.change_message_visibility()
                    .queue_url(&queues.transfer_queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(RETRY_DELAY_SECS)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                sqs.delete_message()
                    .queue_url(&queues.transfer_queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            if let Err(e) = result {
                tracing::warn!(message_id = id, error = e, "settling a transfer message");
            }
        }
    }
}
