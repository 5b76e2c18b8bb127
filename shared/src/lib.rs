//! Everything the filestore functions share: configuration, the typed domain model, errors
//! mapped to the HTTP contract, authentication, the DynamoDB repository and the S3 helpers.
//!
//! Each Lambda function crate is a thin router over these pieces; the local runner and the
//! end-to-end tests build the same [`AppState`] and call the same handlers.
//!
//! # Layout
//! - [`config`]: the one place environment variables are read.
//! - [`error`]: [`ApiError`], the single mapping from failures to status codes and error bodies.
//! - [`domain`]: parsed-at-the-boundary types (`Username`, `Sha256Hex`, `FileName`...) and part sizing.
//! - [`api`]: request and response bodies of the HTTP contract.
//! - [`http`]: routing, JSON bodies in and out, bearer tokens.
//! - [`openapi`]: the OpenAPI 3.1 document, built from the route table and the types.
//! - [`auth`]: argon2id password hashing and JWTs.
//! - [`repo`]: the single-table DynamoDB repository.
//! - [`storage`]: S3 multipart, presigning and object helpers.
//! - [`state`]: [`AppState`], the dependencies every handler takes.

pub mod api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod openapi;
pub mod repo;
pub mod state;
pub mod storage;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;
