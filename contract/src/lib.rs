//! The HTTP contract of filestore as code: what a client may send, what it gets back, and
//! which routes exist. It links no AWS SDK and no Lambda runtime, so the functions, the
//! command-line client and the tests share one definition of every wire type.
//!
//! # Layout
//! - [`domain`]: parsed-at-the-boundary values (`Username`, `Sha256Hex`, `FileName`, sizes,
//!   part numbers) and the part plan of an upload.
//! - [`api`]: the request and response bodies, and the limits a client must respect.
//! - [`routes`]: the route table (method, path, serving function, public or not) and matching.
//! - [`openapi`]: the OpenAPI 3.1 document, built from the route table and the types.

pub mod api;
pub mod domain;
pub mod openapi;
pub mod routes;

pub use routes::{Function, Matched, RouteError, RouteKey, resolve};
