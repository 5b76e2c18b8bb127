//! Lambda entry point: run one sweep per scheduled event.

use filestore_shared::state::Uses;
use filestore_shared::{AppState, metrics};
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};

// Lambda hands a function one request at a time: a current-thread runtime starts no worker
// threads during the cold start (argon2 and hashing run on the blocking pool either way).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let state = metrics::init(
        "janitor",
        AppState::from_env_without_key(Uses::DynamoDbAndS3),
    )
    .await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let request_id = event.context.request_id;
        let sweep = filestore_janitor::sweep(&state, time::OffsetDateTime::now_utc());
        async move { Ok::<_, Error>(metrics::invocation("janitor", &request_id, sweep).await?) }
    }))
    .await
}
