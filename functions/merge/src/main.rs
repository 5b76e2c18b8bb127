//! Lambda entry point: build the state once, then serve API Gateway events.

use filestore_shared::state::Uses;
use filestore_shared::{AppState, metrics};
use lambda_http::{Error, run, service_fn, tracing};

// Lambda hands a function one request at a time: a current-thread runtime starts no worker
// threads during the cold start (argon2 and hashing run on the blocking pool either way).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let state = metrics::init("merge", AppState::from_env(Uses::DynamoDbAndS3)).await?;
    run(service_fn(|req| filestore_merge::handler(&state, req))).await
}
