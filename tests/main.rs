//! End-to-end tests: real HTTP against the local system, real presigned S3 URLs on the
//! emulator, real bytes. One binary, so the system starts once per run.

mod helpers;
mod template;

mod auth;
mod calls;
mod contract;
mod fastupload;
mod files;
mod janitor;
mod permissions;
mod quotas;
mod security;
mod shares;
mod transfer;
mod transfer_faults;
mod uploads;
mod web;
