//! Lambda entry point: build the state once, then serve SQS batches of S3 events.

// The runtime's future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use filestore_shared::AppState;
use filestore_shared::config::Config;
use filestore_shared::metrics;
use filestore_shared::state::{Uses, load_sdk_config};
use filestore_transfer::{Limits, Requeue};
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let (state, requeue) = metrics::init("transfer", async {
        let config = Config::from_env_without_key()?;
        let sdk = load_sdk_config(&config).await?;
        let state = AppState::new(config, &sdk);
        if state.cold.is_none() {
            return Err::<_, Error>(
                "FILESTORE_COLD_BUCKET is required by the transfer function".into(),
            );
        }
        let Some(requeue) = Requeue::from_state(&state) else {
            return Err("FILESTORE_TRANSFER_QUEUE_URL is required by the transfer function".into());
        };
        state.warm_up(Uses::DynamoDbAndS3).await;
        Ok((state, requeue))
    })
    .await?;
    let (state, requeue) = (&state, &requeue);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let limits = Limits::until(event.context.deadline(), Some(requeue.clone()));
        let batch = filestore_transfer::handler(state, event.payload, &limits);
        let response = metrics::invocation("transfer", &event.context.request_id, batch).await;
        Ok::<_, Error>(response)
    }))
    .await
}
