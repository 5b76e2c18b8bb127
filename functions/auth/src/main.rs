//! Lambda entry point: build the state once, then serve API Gateway events.

use filestore_shared::AppState;
use filestore_shared::state::Uses;
use lambda_http::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let state = AppState::from_env(Uses::DynamoDb).await?;
    run(service_fn(|req| filestore_auth::handler(&state, req))).await
}
