//! Accounts: sign up, log in, who am I; where and how the token is kept.

use crate::helpers::{Cli, PASSWORD, str_field};

/// Signing up logs in; a later login replaces the session; `whoami` shows the account,
/// and the token file is readable by its owner only.
#[test]
fn signup_login_and_whoami_show_the_account() {
    let cli = Cli::anonymous();
    let signed = cli.json(&["signup", "--username", &cli.username]);
    assert_eq!(signed["username"], cli.username.as_str());
    assert!(!str_field(&signed, "user_id").is_empty());

    let login = cli.run(&["login", "--username", &cli.username]);
    login.success();
    assert!(
        login.stdout().contains(&cli.username),
        "login output: {}",
        login.stdout()
    );

    let me = cli.json(&["whoami"]);
    assert_eq!(me["username"], cli.username.as_str());
    assert_eq!(me["user_id"], signed["user_id"]);
    assert_eq!(me["file_count"], 0);
    assert_eq!(me["used_bytes"], 0);

    let text = cli.run(&["whoami"]);
    text.success();
    assert!(
        text.stdout().starts_with(&cli.username),
        "{}",
        text.stdout()
    );

    let sessions = cli.config.path().join("sessions.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sessions).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored = std::fs::read_to_string(&sessions).unwrap();
    assert!(!stored.contains(PASSWORD), "the password is never stored");
}

/// The password flag works too, and a session is per server URL.
#[test]
fn password_flag_logs_in_and_sessions_are_per_server() {
    let cli = Cli::logged_in();
    let mut cmd = cli.command(&["login", "--username", &cli.username, "--password", PASSWORD]);
    cmd.env_remove("FILESTORE_PASSWORD");
    cli.run_with(cmd).success();

    let other = format!("{}/", cli.server.trim_end_matches('/'));
    cli.run(&["whoami", "--server", &other]).success();
    let line = cli
        .run(&["whoami", "--server", "http://127.0.0.1:1"])
        .failure();
    assert_eq!(line, "whoami failed: not logged in; run `filestore login`");
}

/// `passwd` changes the password and logs in again: the old token stops working, the CLI
/// keeps working with the new one, and the old password no longer logs in.
#[test]
fn passwd_replaces_the_session_and_revokes_the_old_token() {
    let cli = Cli::logged_in();
    let sessions = cli.config.path().join("sessions.json");
    let before = std::fs::read_to_string(&sessions).unwrap();
    let mut cmd = cli.command(&["passwd"]);
    cmd.env("FILESTORE_NEW_PASSWORD", "a brand new password");
    cli.run_with(cmd).success();
    let after = std::fs::read_to_string(&sessions).unwrap();
    assert_ne!(before, after, "the session was renewed");
    cli.run(&["whoami"]).success();

    // The old token, put back, is refused.
    std::fs::write(&sessions, &before).unwrap();
    let line = cli.run(&["whoami"]).failure();
    assert!(line.starts_with("whoami failed:"), "{line}");
    let line = cli.run(&["login", "--username", &cli.username]).failure();
    assert!(line.contains("wrong username or password"), "{line}");
    let mut cmd = cli.command(&["login", "--username", &cli.username]);
    cmd.env("FILESTORE_PASSWORD", "a brand new password");
    cli.run_with(cmd).success();
}
