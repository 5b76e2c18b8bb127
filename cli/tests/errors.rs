//! User mistakes and server refusals: a non-zero exit and one line on stderr saying what
//! failed, why and what to do; never a panic.

use crate::helpers::{Cli, PASSWORD};

/// Without a session, every command that needs one says to log in.
#[test]
fn commands_without_a_login_say_to_log_in() {
    let cli = Cli::anonymous();
    cli.write("a.txt", b"a");
    for (args, command) in [
        (vec!["ls"], "ls"),
        (vec!["whoami"], "whoami"),
        (vec!["upload", "a.txt"], "upload"),
        (
            vec!["download", "0190f0e0-0000-7000-8000-000000000000"],
            "download",
        ),
        (vec!["rm", "x"], "rm"),
    ] {
        let line = cli.run(&args).failure();
        assert_eq!(
            line,
            format!("{command} failed: not logged in; run `filestore login`")
        );
    }
}

/// A wrong password is refused with the server's message and a hint, and stores nothing.
#[test]
fn wrong_password_is_one_line() {
    let cli = Cli::logged_in();
    let other = Cli::anonymous();
    let mut cmd = other.command(&["login", "--username", &cli.username]);
    cmd.env("FILESTORE_PASSWORD", "not the password");
    let line = other.run_with(cmd).failure();
    assert!(line.starts_with("login failed: "), "{line}");
    assert!(line.contains("(HTTP 401)"), "{line}");
    assert!(line.ends_with("check the username and password"), "{line}");
    assert!(!other.config.path().join("sessions.json").exists());
}

/// Ids that name no file of mine are a 404 with a pointer to `filestore ls`, whether well
/// formed or not.
#[test]
fn unknown_file_ids_are_one_line() {
    let cli = Cli::logged_in();
    for id in [
        "0190f0e0-0000-7000-8000-000000000000",
        "no-such-id",
        "../me",
    ] {
        for args in [
            vec!["download", id],
            vec!["rm", id],
            vec!["mv", id, "new.txt"],
        ] {
            let line = cli.run(&args).failure();
            assert!(line.starts_with(&format!("{} failed: ", args[0])), "{line}");
            assert!(line.contains("(HTTP 404)"), "{line}");
            assert!(line.ends_with("`filestore ls`"), "{line}");
        }
    }
}

/// Local mistakes and an unreachable server are explained, not panicked about.
#[test]
fn local_mistakes_and_unreachable_servers_are_one_line() {
    let cli = Cli::logged_in();
    let line = cli.run(&["upload", "missing.bin"]).failure();
    assert!(
        line.starts_with("upload failed: reading missing.bin: "),
        "{line}"
    );

    let line = cli
        .run(&["ls", "--server", "localhost:8080"])
        .usage_failure();
    assert!(line.contains("not an http(s) URL"), "{line}");

    let mut cmd = cli.command(&[
        "login",
        "--username",
        &cli.username,
        "--server",
        "http://127.0.0.1:1",
    ]);
    cmd.env("FILESTORE_PASSWORD", PASSWORD);
    let line = cli.run_with(cmd).failure();
    assert!(line.starts_with("login failed: cannot reach"), "{line}");
    assert!(line.contains("FILESTORE_SERVER"), "{line}");

    let mut cmd = cli.command(&["login", "--username", &cli.username]);
    cmd.env_remove("FILESTORE_PASSWORD");
    let line = cli.run_with(cmd).usage_failure();
    assert!(line.contains("no password"), "{line}");

    cli.write("one.txt", b"1");
    cli.write("two.txt", b"2");
    let line = cli
        .run(&["upload", "one.txt", "two.txt", "--name", "x.txt"])
        .usage_failure();
    assert!(line.contains("--name names one file"), "{line}");
    std::fs::create_dir(cli.path("empty")).unwrap();
    let line = cli.run(&["upload", "empty"]).usage_failure();
    assert_eq!(
        line,
        "upload failed: no files to upload; see `filestore --help`"
    );
}

/// Share commands with ids that name nothing say where the ids come from; a lifetime the
/// server would refuse is refused as the flag's mistake, before any request.
#[test]
fn share_mistakes_are_one_line() {
    let cli = Cli::logged_in();
    let missing = "0190f0e0-0000-7000-8000-000000000000";
    for args in [vec!["share", missing], vec!["shares", missing]] {
        let line = cli.run(&args).failure();
        assert!(line.starts_with(&format!("{} failed: ", args[0])), "{line}");
        assert!(line.contains("(HTTP 404)"), "{line}");
        assert!(line.ends_with("`filestore ls`"), "{line}");
    }
    let line = cli.run(&["unshare", missing]).failure();
    assert!(line.contains("(HTTP 404)"), "{line}");
    assert!(line.ends_with("`filestore shares FILE_ID`"), "{line}");

    for expires in ["10s", "31d", "1y"] {
        let run = cli.run(&["share", missing, "--expires", expires]);
        assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
        assert!(run.stderr().contains("--expires"), "{}", run.stderr());
        assert!(
            !run.stderr().contains("HTTP"),
            "refused locally: {}",
            run.stderr()
        );
    }
}

/// A server failure names the request's `x-request-id`, which the server's log lines carry,
/// whether or not its body is the contract's error (a gateway's 502 is not).
#[test]
fn server_failures_name_the_request_id() {
    for (status, body) in [
        (
            500,
            r#"{"error":{"code":"internal","message":"internal error"}}"#,
        ),
        (502, "<html>Bad Gateway</html>"),
    ] {
        let server = failing_server(status, body, "req-7f3a");
        let cli = Cli::anonymous();
        let mut cmd = cli.command(&["login", "--username", &cli.username, "--server", &server]);
        cmd.env("FILESTORE_PASSWORD", PASSWORD);
        let line = cli.run_with(cmd).failure();
        assert!(
            line.contains(&format!("(HTTP {status}, request id req-7f3a)")),
            "{line}"
        );
        assert!(
            line.ends_with("the server failed; try again later"),
            "{line}"
        );
    }
}

/// A server answering every request with `status`, `body` and `x-request-id: request_id`.
fn failing_server(status: u16, body: &'static str, request_id: &'static str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let _ = reader.read_exact(&mut vec![0; length]);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nx-request-id: {request_id}\r\nconnection: close\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}
