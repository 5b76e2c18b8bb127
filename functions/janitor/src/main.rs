//! Lambda entry point: run one sweep per scheduled event.

use filestore_shared::{AppState, metrics};
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let state = AppState::from_env_without_key().await?;
    let recorder = metrics::init("janitor")?;
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let report = filestore_janitor::sweep(&state, time::OffsetDateTime::now_utc()).await;
        metrics::flush(recorder);
        Ok::<_, Error>(report?)
    }))
    .await
}
