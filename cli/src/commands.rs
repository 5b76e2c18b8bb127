//! One function per command: gather input, call the API, print the result.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::AtomicBool;

use filestore_contract::api::{CreateShareRequest, Credentials, PasswordChange};
use filestore_contract::domain::{FolderId, Password, Username};
use serde_json::json;

use crate::api::Api;
use crate::cli::{Cli, Command, CredentialArgs, DownloadArgs, UploadArgs};
use crate::config::{ResumeStore, Session, Sessions, Settings, unix_now};
use crate::download;
use crate::error::{Error, Result};
use crate::namespace;
use crate::output::{Output, human_bytes, lines};
use crate::remote;
use crate::upload::{self, Destination, HashCache, UploadOptions, Uploader};

/// Runs the parsed command line.
///
/// # Errors
/// Whatever made the command fail; the caller reports it.
pub async fn run(cli: Cli, settings: Settings, out: &Output) -> Result<()> {
    let server = cli.server.as_str();
    let sessions = Sessions::new(&settings.config_dir);
    match cli.command {
        Command::Signup(args) => sign_in(server, &args, &settings, &sessions, out, true).await,
        Command::Login(args) => sign_in(server, &args, &settings, &sessions, out, false).await,
        Command::Whoami => whoami(&authed(server, &sessions, &settings)?.0, out).await,
        Command::Ls(args) => {
            let api = authed(server, &sessions, &settings)?.0;
            if args.flat {
                ls_flat(&api, out).await
            } else {
                namespace::ls(&api, args.target.as_deref().unwrap_or("/"), out).await
            }
        }
        Command::Info { target } => {
            namespace::info(&authed(server, &sessions, &settings)?.0, &target, out).await
        }
        Command::Mkdir { parents, path } => {
            namespace::mkdir(
                &authed(server, &sessions, &settings)?.0,
                &path,
                parents,
                out,
            )
            .await
        }
        Command::Trash => namespace::trash(&authed(server, &sessions, &settings)?.0, out).await,
        Command::Restore { id, to, name } => {
            let api = authed(server, &sessions, &settings)?.0;
            namespace::restore(&api, &id, to.as_deref(), name, out).await
        }
        Command::Purge { id, all } => {
            namespace::purge(
                &authed(server, &sessions, &settings)?.0,
                id.as_deref(),
                all,
                out,
            )
            .await
        }
        Command::Upload(args) => upload(server, &args, &settings, &sessions, out).await,
        Command::Download(args) => {
            download(
                &authed(server, &sessions, &settings)?.0,
                &args,
                &settings,
                out,
            )
            .await
        }
        Command::Mv {
            source,
            destination,
        } => {
            namespace::mv(
                &authed(server, &sessions, &settings)?.0,
                &source,
                &destination,
                out,
            )
            .await
        }
        Command::Share(args) => {
            let api = authed(server, &sessions, &settings)?.0;
            let body = CreateShareRequest {
                expires_in: args.expires,
                max_downloads: args.max_downloads,
            };
            let file_id = remote::file_id(&api, &args.file).await?;
            let share = api.share(&file_id, &body).await?;
            out.result(&share, || {
                let limit = share
                    .max_downloads
                    .map_or(String::new(), |m| format!(", at most {m} downloads"));
                format!(
                    "{}\n(expires {}{limit}; share id {})",
                    share.url, share.expires_at, share.share_id
                )
            });
            Ok(())
        }
        Command::Shares { file } => {
            let api = authed(server, &sessions, &settings)?.0;
            let list = api.shares(&remote::file_id(&api, &file).await?).await?;
            out.result(&list, || {
                lines(&list.shares, "no live share links", |s| {
                    let limit = s
                        .max_downloads
                        .map_or("unlimited".to_string(), |m| m.to_string());
                    format!(
                        "{}  expires {}  downloads {}/{limit}",
                        s.share_id, s.expires_at, s.downloads
                    )
                })
            });
            Ok(())
        }
        Command::Unshare { share_id } => {
            authed(server, &sessions, &settings)?
                .0
                .unshare(&share_id)
                .await?;
            out.result(&json!({ "revoked": share_id }), || {
                format!("revoked share {share_id}")
            });
            Ok(())
        }
        Command::Passwd => passwd(server, &settings, &sessions, out).await,
        Command::Rm { recursive, target } => {
            namespace::rm(
                &authed(server, &sessions, &settings)?.0,
                &target,
                recursive,
                out,
            )
            .await
        }
    }
}

/// A client with the stored token for `server`, and the session it came from.
fn authed(server: &str, sessions: &Sessions, settings: &Settings) -> Result<(Api, Session)> {
    // Check the URL first: a malformed --server should say so, not "not logged in".
    Api::new(server, None)?;
    let session = sessions.get(server)?;
    let api = Api::new(server, Some(session.token.clone()))?.page_limit(settings.hooks.page_limit);
    Ok((api, session))
}

/// Username and password from flags, `FILESTORE_PASSWORD`, or a terminal prompt (the
/// password without echo; twice when `confirm`), as the contract allows them.
///
/// # Errors
/// A value missing without a terminal to ask on, or one the contract refuses.
fn credentials(args: &CredentialArgs, settings: &Settings, confirm: bool) -> Result<Credentials> {
    let interactive = std::io::stdin().is_terminal();
    let username = match &args.username {
        Some(u) => u.clone(),
        None if interactive => {
            eprint!("username: ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::io("reading the username", e))?;
            line.trim().to_string()
        }
        None => {
            return Err(Error::Usage(
                "no username: pass --username (stdin is not a terminal)".to_string(),
            ));
        }
    };
    let password = match (&args.password, &settings.password) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) if interactive => {
            let read = |prompt: &str| {
                rpassword::prompt_password(prompt).map_err(|e| Error::io("reading the password", e))
            };
            let password = read("password: ")?;
            if confirm && read("password again: ")? != password {
                return Err(Error::Usage("the passwords differ".to_string()));
            }
            password
        }
        (None, None) => {
            return Err(Error::Usage(
                "no password: pass --password or set FILESTORE_PASSWORD (stdin is not a terminal)"
                    .to_string(),
            ));
        }
    };
    Ok(Credentials {
        username: Username::parse(&username).map_err(Error::Usage)?,
        password: Password::parse(&password).map_err(Error::Usage)?,
    })
}

/// `signup` (which creates the account first) and `login`: both end with a saved session.
async fn sign_in(
    server: &str,
    args: &CredentialArgs,
    settings: &Settings,
    sessions: &Sessions,
    out: &Output,
    new_account: bool,
) -> Result<()> {
    let api = Api::new(server, None)?;
    let credentials = credentials(args, settings, new_account)?;
    let account = if new_account {
        Some(api.signup(&credentials).await?)
    } else {
        None
    };
    let session = log_in(&api, server, &credentials, sessions).await?;
    match account {
        Some(account) => out.result(
            &json!({
                "user_id": account.user_id,
                "username": account.username,
                "expires_at": session.expires_at,
            }),
            || format!("signed up and logged in as {}", account.username),
        ),
        None => out.result(
            &json!({ "username": session.username, "expires_at": session.expires_at }),
            || format!("logged in as {} on {server}", session.username),
        ),
    }
    Ok(())
}

async fn log_in(
    api: &Api,
    server: &str,
    credentials: &Credentials,
    sessions: &Sessions,
) -> Result<Session> {
    let token = api.login(credentials).await?;
    let session = Session {
        username: credentials.username.to_string(),
        token: token.token,
        expires_at: unix_now() + token.expires_in,
    };
    sessions.put(server, session.clone())?;
    Ok(session)
}

/// Changes the password, then logs in again with the new one: the change revokes the stored
/// token along with every other.
async fn passwd(
    server: &str,
    settings: &Settings,
    sessions: &Sessions,
    out: &Output,
) -> Result<()> {
    let (api, session) = authed(server, sessions, settings)?;
    let interactive = std::io::stdin().is_terminal();
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| Error::io("reading the password", e))
    };
    let old = match &settings.password {
        Some(p) => p.clone(),
        None if interactive => read("current password: ")?,
        None => {
            return Err(Error::Usage(
                "no current password: set FILESTORE_PASSWORD (stdin is not a terminal)".to_string(),
            ));
        }
    };
    let new = match &settings.new_password {
        Some(p) => p.clone(),
        None if interactive => {
            let new = read("new password: ")?;
            if read("new password again: ")? != new {
                return Err(Error::Usage("the passwords differ".to_string()));
            }
            new
        }
        None => {
            return Err(Error::Usage(
                "no new password: set FILESTORE_NEW_PASSWORD (stdin is not a terminal)".to_string(),
            ));
        }
    };
    let change = PasswordChange {
        old_password: Password::parse(&old).map_err(|e| Error::Usage(format!("current {e}")))?,
        new_password: Password::parse(&new).map_err(|e| Error::Usage(format!("new {e}")))?,
    };
    api.change_password(&change).await?;
    let credentials = Credentials {
        username: Username::parse(&session.username).map_err(|e| {
            Error::Failed(format!("the stored session's username is not valid ({e})"))
        })?,
        password: change.new_password,
    };
    let anonymous = Api::new(server, None)?;
    let renewed = log_in(&anonymous, server, &credentials, sessions).await?;
    out.result(
        &json!({ "username": renewed.username, "expires_at": renewed.expires_at }),
        || "password changed; every other session is logged out".to_string(),
    );
    Ok(())
}

async fn whoami(api: &Api, out: &Output) -> Result<()> {
    let me = api.me().await?;
    out.result(&me, || {
        format!(
            "{} (user id {})\n{} files, {} of {} used",
            me.username,
            me.user_id,
            me.file_count,
            human_bytes(me.used_bytes),
            human_bytes(me.quota_bytes)
        )
    });
    Ok(())
}

/// `ls --flat`: every file in every folder (`GET /v1/files`).
async fn ls_flat(api: &Api, out: &Output) -> Result<()> {
    let files = api.all_files().await?;
    out.result(&json!({ "files": files }), || {
        lines(&files, "no files", |f| namespace::file_line(f))
    });
    Ok(())
}

async fn upload(
    server: &str,
    args: &UploadArgs,
    settings: &Settings,
    sessions: &Sessions,
    out: &Output,
) -> Result<()> {
    let (api, session) = authed(server, sessions, settings)?;
    let plan = upload::plan_files(&args.paths, args.name.as_ref())?;
    let destination = match remote::Target::of(&args.to) {
        // The root is always there: no request to find it.
        remote::Target::Path(path) if remote::normalize(path) == "/" => Destination {
            folder_id: FolderId::root(),
            path: "/".to_string(),
        },
        remote::Target::Path(path) => Destination {
            folder_id: remote::ensure_path(&api, path).await?.folder_id,
            path: remote::normalize(path),
        },
        remote::Target::Id(id) => {
            let folder = api.folder(id).await?;
            Destination {
                path: namespace::folder_path(&folder),
                folder_id: folder.folder.folder_id,
            }
        }
    };
    let uploader = Uploader {
        api: &api,
        server,
        username: &session.username,
        store: ResumeStore::new(&settings.config_dir),
        hashes: HashCache::new(&settings.config_dir),
        config_dir: &settings.config_dir,
        out,
        hooks: settings.hooks,
        options: UploadOptions {
            concurrency: usize::from(args.concurrency),
            part_size: args.part_size,
            on_conflict: args.on_conflict,
            hash_first: args.hash_first,
        },
        destination,
        instant_refused: AtomicBool::new(false),
    };
    let (uploaded, outcome) = uploader.upload_all(&plan).await;
    // Files uploaded before a failure are reported too (with `--json`, the failure itself
    // goes to stderr and the exit code), so a script knows what is stored.
    if outcome.is_ok() || !uploaded.is_empty() {
        out.result(&json!({ "uploads": uploaded }), String::new);
    }
    outcome
}

/// Resolves the argument to a file id first; the transfer itself only knows ids.
async fn download(api: &Api, args: &DownloadArgs, settings: &Settings, out: &Output) -> Result<()> {
    let file_id = remote::file_id(api, &args.file).await?;
    let done = download::download(
        api,
        out,
        settings.hooks,
        &file_id,
        args.output.as_deref(),
        args.force,
        download::DownloadOptions {
            concurrency: usize::from(args.concurrency),
            part_size: args.part_size.unwrap_or(download::DEFAULT_PART_SIZE),
        },
    )
    .await?;
    out.result(&done, || download::summary(&done));
    Ok(())
}
