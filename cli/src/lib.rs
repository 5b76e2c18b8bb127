//! `filestore`, the command-line client of the filestore API (DESIGN.md): sign up, log in,
//! change the password; folders addressed by path (`/docs/a.pdf`) or by id; upload files and
//! directory trees of any size straight to S3 through presigned multipart URLs (each byte
//! read once, hashed as the parts stream, parts in parallel, retried, resumable across runs;
//! instant when the server already holds the content); list, download (parallel ranged GETs,
//! resumable per part, checked against the server's verified SHA-256), move, rename, delete
//! to the trash, restore, purge; make, list and revoke share links.
//!
//! It promises one result on stdout (text, or JSON with `--json`), progress on stderr only
//! when stderr is a terminal, and for any failure one line on stderr saying what failed,
//! why, and what to do, with a non-zero exit code.
//!
//! # Layout
//! - [`cli`]: the command line (clap).
//! - [`commands`]: one function per command: accounts (`signup`, `login`, `whoami`,
//!   `passwd`), share links (`share`, `shares`, `unshare`), and the transfers.
//! - [`namespace`]: folders, paths and the trash (`ls`, `info`, `mkdir`, `mv`, `rm`,
//!   `trash`, `restore`, `purge`).
//! - [`remote`]: arguments to ids: `/a/b` is a path, anything else an id; `mkdir -p`.
//! - [`api`]: typed client of the HTTP contract.
//! - [`config`]: the environment, the token store, the resume-state store.
//! - [`upload`]: the upload command and its parts (local files, hashing, instant upload,
//!   resume, parallel part sending).
//! - [`download`]: the parallel, resumable, checked download.
//! - [`output`]: stdout/stderr, JSON, progress bars.
//! - [`error`]: failures and the one-line report.

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod download;
pub mod error;
pub mod namespace;
pub mod output;
pub mod remote;
pub mod upload;

use std::process::ExitCode;

use clap::Parser;

use crate::config::Settings;
use crate::output::Output;

/// Parses the command line, runs it, reports a failure in one line.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let command = cli.command.name();
    let out = Output::new(cli.json);
    let result = Settings::from_env().and_then(|settings| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| error::Error::io("starting the async runtime", e))?;
        runtime.block_on(commands::run(cli, settings, &out))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.note(&error::report(command, &e));
            ExitCode::from(error::exit_code(&e))
        }
    }
}
