//! [`Error`]: why a command failed, and [`report`]: the one line a person reads about it
//! (what failed, why, what to do).

use std::io;

/// A failed command. User mistakes and server answers are values here, never panics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No stored session for this server.
    #[error("not logged in")]
    NotLoggedIn,
    /// The stored session is past its expiry.
    #[error("your session has expired")]
    SessionExpired,
    /// The API answered with its error body (or a status without one). A server failure or
    /// an answer that is not the contract's names the request's `x-request-id`, which the
    /// server's log lines carry, so an operator can find what went wrong.
    #[error("{message} (HTTP {status}{})", request_id_note(*.status, .code, .request_id))]
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// No file or folder of mine at this path.
    #[error("no file or folder at {0}")]
    NoSuchPath(String),
    /// The API or the storage could not be reached or stopped answering.
    #[error("cannot reach {what}: {reason}")]
    Unreachable { what: String, reason: String },
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// Anything else, already phrased for a person.
    #[error("{0}")]
    Failed(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit code of a failed command: 2 for a command line that cannot work as given (as
/// for clap's own parse errors), 1 for everything else.
pub fn exit_code(err: &Error) -> u8 {
    match err {
        Error::Usage(_) => 2,
        _ => 1,
    }
}

impl Error {
    /// A local I/O failure with what we were doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A transport failure talking to `what` (the API, or storage).
    pub fn transport(what: &str, err: &reqwest::Error) -> Self {
        let reason = if err.is_timeout() {
            "timed out".to_string()
        } else {
            innermost_cause(err)
        };
        Self::Unreachable {
            what: what.to_string(),
            reason,
        }
    }

    /// What a person can do about it, given the command that failed.
    fn hint(&self, command: &str) -> Option<&'static str> {
        match self {
            Self::NotLoggedIn | Self::SessionExpired => Some("run `filestore login`"),
            Self::Api { status: 401, .. } if command == "login" => {
                Some("check the username and password")
            }
            Self::Api { status: 401, .. } => Some("run `filestore login`"),
            Self::Api { status: 404, .. }
                if matches!(
                    command,
                    "download" | "mv" | "rm" | "upload" | "share" | "shares" | "info" | "ls"
                ) =>
            {
                Some("list your files and their ids with `filestore ls`")
            }
            Self::NoSuchPath(_) => Some("see what is there with `filestore ls /FOLDER`"),
            Self::Api {
                status: 409, code, ..
            } => match code.as_str() {
                "name_taken" => Some("choose another name, or move or remove the one there"),
                "cycle" => Some("choose a folder outside the one being moved"),
                "parent_gone" if command == "restore" => {
                    Some("restore its folder first, or choose another with --to PATH")
                }
                "parent_gone" => Some(
                    "restore the folder with `filestore restore`, or upload elsewhere with --to",
                ),
                _ if command == "signup" => {
                    Some("choose another username, or `filestore login` if it is yours")
                }
                _ => None,
            },
            Self::Api {
                status: 400, code, ..
            } if code == "root_folder" => Some("the root folder `/` stays where it is"),
            Self::Api { status: 404, .. } if matches!(command, "restore" | "purge") => {
                Some("list the trash and its ids with `filestore trash`")
            }
            Self::Api { status: 404, .. } if command == "unshare" => {
                Some("list a file's links and their ids with `filestore shares FILE_ID`")
            }
            Self::Api {
                status: 413, code, ..
            } if code == "quota_exceeded" => Some("free space with `filestore rm`"),
            Self::Api { status: 429, .. } => Some("wait a few minutes and try again"),
            Self::Api { status, .. } if *status >= 500 => {
                Some("the server failed; try again later")
            }
            Self::Unreachable { .. } => Some(
                "check that the server is running and that --server or FILESTORE_SERVER points at it",
            ),
            Self::Usage(_) => Some("see `filestore --help`"),
            _ => None,
        }
    }
}

/// `, request id ID` for a server failure (5xx) or an answer without the contract's error
/// body; nothing for a client mistake, which the message already explains.
fn request_id_note(status: u16, code: &str, request_id: &Option<String>) -> String {
    match request_id {
        Some(id) if status >= 500 || code.is_empty() => format!(", request id {id}"),
        _ => String::new(),
    }
}

/// The last error in a source chain: for a refused connection that is the OS error, which
/// says more than reqwest's "error sending request for url (...)".
fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// One line: `<command> failed: <why>[; <what to do>]`, with any line breaks of a server
/// message folded so the report stays on one line.
pub fn report(command: &str, err: &Error) -> String {
    let mut line = format!("{command} failed: {err}");
    if let Some(hint) = err.hint(command) {
        line.push_str("; ");
        line.push_str(hint);
    }
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> Error {
        Error::Api {
            status,
            code: code.into(),
            message: message.into(),
            request_id: Some("req-1".into()),
        }
    }

    #[test]
    fn server_failures_and_unexpected_answers_name_the_request_id() {
        assert_eq!(
            report("ls", &api(500, "internal", "internal error")),
            "ls failed: internal error (HTTP 500, request id req-1); the server failed; try again later"
        );
        assert!(
            report("ls", &api(418, "", "the server answered I'm a teapot"))
                .contains("(HTTP 418, request id req-1)")
        );
        assert!(!report("ls", &api(404, "not_found", "gone")).contains("request id"));
        let anonymous = Error::Api {
            status: 502,
            code: String::new(),
            message: "the server answered Bad Gateway".into(),
            request_id: None,
        };
        assert!(report("ls", &anonymous).contains("(HTTP 502);"));
    }

    #[test]
    fn not_logged_in_says_how_to_log_in() {
        assert_eq!(
            report("upload", &Error::NotLoggedIn),
            "upload failed: not logged in; run `filestore login`"
        );
    }

    #[test]
    fn api_errors_carry_the_server_message_status_and_a_hint() {
        assert_eq!(
            report("rm", &api(404, "not_found", "file not found")),
            "rm failed: file not found (HTTP 404); list your files and their ids with `filestore ls`"
        );
        assert_eq!(
            report(
                "login",
                &api(401, "invalid_credentials", "invalid username or password")
            ),
            "login failed: invalid username or password (HTTP 401); check the username and password"
        );
        assert!(
            report("ls", &api(401, "unauthorized", "token expired")).ends_with("filestore login`")
        );
        assert!(
            report("upload", &api(413, "quota_exceeded", "over quota")).contains("filestore rm")
        );
        assert!(report("ls", &api(503, "internal", "boom")).contains("try again later"));
    }

    #[test]
    fn namespace_refusals_say_what_to_do() {
        assert_eq!(
            report("ls", &Error::NoSuchPath("/docs/x".into())),
            "ls failed: no file or folder at /docs/x; see what is there with `filestore ls /FOLDER`"
        );
        assert!(
            report("mv", &api(409, "name_taken", "taken"))
                .ends_with("move or remove the one there")
        );
        assert!(report("mv", &api(409, "cycle", "cycle")).contains("outside"));
        assert!(report("restore", &api(409, "parent_gone", "gone")).contains("--to PATH"));
        assert!(report("rm", &api(400, "root_folder", "root")).contains("root folder"));
        assert!(report("purge", &api(404, "not_found", "gone")).ends_with("`filestore trash`"));
    }

    #[test]
    fn share_commands_say_where_ids_come_from() {
        for command in ["share", "shares"] {
            assert!(
                report(command, &api(404, "not_found", "file not found"))
                    .ends_with("`filestore ls`")
            );
        }
        assert_eq!(
            report("unshare", &api(404, "not_found", "share not found")),
            "unshare failed: share not found (HTTP 404); list a file's links and their ids with `filestore shares FILE_ID`"
        );
    }

    #[test]
    fn usage_errors_exit_2_and_the_rest_1() {
        assert_eq!(exit_code(&Error::Usage("no files to upload".into())), 2);
        assert_eq!(exit_code(&Error::NotLoggedIn), 1);
        assert_eq!(exit_code(&api(400, "bad_request", "no")), 1);
        assert_eq!(exit_code(&Error::Failed("x".into())), 1);
    }

    #[test]
    fn reports_stay_on_one_line() {
        let line = report("mv", &api(400, "bad_name", "name has\na line break\r\n"));
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        assert!(line.starts_with("mv failed: name has a line break"));
    }

    #[test]
    fn io_errors_name_what_was_being_done() {
        let err = Error::io(
            "reading ./missing.bin",
            io::Error::new(io::ErrorKind::NotFound, "No such file or directory"),
        );
        assert_eq!(
            report("upload", &err),
            "upload failed: reading ./missing.bin: No such file or directory"
        );
    }
}
