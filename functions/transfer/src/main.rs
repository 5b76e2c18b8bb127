//! Lambda entry point: build the state once, then serve SQS batches of S3 events.

// The runtime's future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use filestore_shared::AppState;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let state = AppState::from_env().await?;
    if state.cold.is_none() {
        return Err("FILESTORE_COLD_BUCKET is required by the transfer function".into());
    }
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(filestore_transfer::handler(&state, event.payload).await)
    }))
    .await
}
