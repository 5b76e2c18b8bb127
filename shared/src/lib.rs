//! Everything the filestore functions share beyond the wire contract (`filestore-contract`):
//! configuration, errors mapped to the contract's error bodies, authentication, the DynamoDB
//! repository and the S3 helpers.
//!
//! Each Lambda function crate is a thin router over these pieces; the local runner and the
//! end-to-end tests build the same [`AppState`] and call the same handlers.
//!
//! # Layout
//! - [`config`]: the one place environment variables are read.
//! - [`error`]: [`ApiError`], the single mapping from failures to status codes and error bodies.
//! - [`http`]: JSON bodies in and out, bearer tokens, the headers of every answer.
//! - [`https`]: the HTTPS client of every AWS client, with Mozilla's roots compiled in.
//! - [`auth`]: argon2id password hashing and JWTs.
//! - [`keys`]: every DynamoDB and S3 key, built and parsed in one place.
//! - [`live`]: whether a file or folder is live, walking its parent chain once per request.
//! - [`repo`]: the single-table DynamoDB repository.
//! - [`storage`]: the only door to S3: objects, multipart uploads, presigning, bucket setup.
//! - [`metrics`]: the invocation scope: its request id on every log line, its figures written
//!   for CloudWatch as Embedded Metric Format lines.
//! - [`queue`]: the transfer queue, as a sender of the message that runs a transfer.
//! - [`state`]: [`AppState`], the dependencies every handler takes.
//! - [`trash`]: trashing, finding and purging trashed items, for the files, folders and
//!   trash functions and the janitor.
//! - [`purge`]: a folder's purge, a step at a time within a budget, resumable.

/// `$client`, a client of the AWS SDK crate `$sdk`, rebuilt with `$interceptor` on its
/// config: how tests record or fail the calls of a [`repo::Repo`] or a [`storage::Storage`].
macro_rules! with_interceptor {
    ($sdk:ident, $client:expr, $interceptor:expr) => {
        $sdk::Client::from_conf(
            $client
                .config()
                .to_builder()
                .interceptor($interceptor)
                .build(),
        )
    };
}

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod https;
pub mod keys;
pub mod live;
pub mod metrics;
pub mod purge;
pub mod queue;
pub mod repo;
pub mod state;
pub mod storage;
pub mod trash;

pub use config::Config;

/// An SDK client built on its first use, shared by the clones of what holds it: a cold start
/// builds only the clients its requests call (each costs about 0.4 M instructions to build).
type LazyClient<C> = std::sync::Arc<std::sync::LazyLock<C, Box<dyn FnOnce() -> C + Send>>>;

fn lazy_client<C>(build: impl FnOnce() -> C + Send + 'static) -> LazyClient<C> {
    std::sync::Arc::new(std::sync::LazyLock::new(Box::new(build)))
}
pub use error::ApiError;
pub use state::AppState;
