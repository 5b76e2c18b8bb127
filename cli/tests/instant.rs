//! Instant upload: once the server has verified some content, another user who holds the
//! same bytes gets the file by proving possession, without sending them.

use crate::helpers::{Cli, PASSWORD, str_field, test_bytes, wait_verified};

/// User A uploads; once verified, user B uploading the same bytes (1 MiB or more: smaller
/// content is never shared across users) sends none of them and downloads them back byte for
/// byte. A different file of the same size is uploaded as usual.
#[test]
fn verified_content_uploads_instantly_for_another_user() {
    let size = 1_500_000;
    let data = test_bytes(size, 41);

    let a = Cli::logged_in();
    a.write("shared.bin", &data);
    let up = a.json(&["upload", "shared.bin"]);
    let first = &up["uploads"][0];
    assert_eq!(first["instant"], false, "nothing verified yet: {first}");
    assert_eq!(first["bytes_sent"], size);
    wait_verified(&a, str_field(&first["file"], "file_id"));

    let b = Cli::logged_in();
    b.write("mine.bin", &data);
    let up = b.json(&["upload", "mine.bin"]);
    let got = &up["uploads"][0];
    assert_eq!(got["instant"], true, "{got}");
    assert_eq!(got["parts_sent"], 0);
    assert_eq!(got["part_count"], 0);
    assert_eq!(got["bytes_sent"], 0);
    assert_eq!(got["resumed"], false);
    assert_eq!(got["file"]["name"], "mine.bin");
    assert_eq!(got["file"]["size"], size);
    assert_eq!(got["file"]["verified"], true);
    assert_ne!(got["file"]["file_id"], first["file"]["file_id"]);
    assert!(b.resume_states().is_empty());
    let id = str_field(&got["file"], "file_id");
    assert_eq!(b.files().len(), 1);

    b.json(&["download", id, "-o", "copy.bin"]);
    assert!(
        std::fs::read(b.path("copy.bin")).unwrap() == data,
        "bytes differ"
    );

    let run = b.run(&["upload", "mine.bin", "--name", "again.bin"]);
    run.success();
    assert!(
        run.stdout().contains("instant") && run.stdout().contains("no bytes sent"),
        "{}",
        run.stdout()
    );

    let mut other = data.clone();
    other[size / 2] ^= 0xff;
    b.write("other.bin", &other);
    let up = b.json(&["upload", "other.bin"]);
    let normal = &up["uploads"][0];
    assert_eq!(normal["instant"], false, "{normal}");
    assert_eq!(normal["parts_sent"], 1);
    assert_eq!(normal["bytes_sent"], size);
    other[size / 3] ^= 0xff;
    b.write("third.bin", &other);
    let run = b.run(&["upload", "third.bin"]);
    run.success();
    assert!(!run.stdout().contains("instant"), "{}", run.stdout());
}

/// A large file is not hashed before sending unless asked: another user's upload of bytes
/// the store holds tries instant upload with `--hash-first`, and sends them all without.
#[test]
fn hash_first_tries_instant_upload_for_a_large_file() {
    let size = 17 << 20;
    let data = test_bytes(size, 43);
    let a = Cli::logged_in();
    a.write("big.bin", &data);
    let up = a.json(&["upload", "big.bin"]);
    wait_verified(&a, str_field(&up["uploads"][0]["file"], "file_id"));

    let b = Cli::logged_in();
    b.write("big.bin", &data);
    let up = b.json(&["upload", "big.bin", "--hash-first"]);
    let got = &up["uploads"][0];
    assert_eq!(got["instant"], true, "{got}");
    assert_eq!(got["bytes_sent"], 0);

    let c = Cli::logged_in();
    c.write("big.bin", &data);
    let up = c.json(&["upload", "big.bin"]);
    let got = &up["uploads"][0];
    assert_eq!(got["instant"], false, "{got}");
    assert_eq!(got["bytes_sent"], size);
}

/// A user who has used up the hour's challenges (the server answers `429`) still uploads:
/// the CLI says so in one note, sends the bytes, and does not ask again for the next file of
/// the same run.
#[test]
fn a_refused_instant_upload_falls_back_to_sending_the_bytes() {
    let cli = Cli::logged_in();
    let http = reqwest::blocking::Client::new();
    let token = http
        .post(format!("{}/v1/auth/login", cli.server))
        .json(&serde_json::json!({"username": cli.username, "password": PASSWORD}))
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Use up the hour's challenges, then one more to see the refusal.
    let mut refused = false;
    for i in 0..=120 {
        let status = http
            .post(format!("{}/v1/fast-upload", cli.server))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "name": "x",
                "size": 1,
                "sha256": format!("{i:064x}"),
            }))
            .send()
            .unwrap()
            .status();
        refused = status == 429;
    }
    assert!(refused, "the 121st challenge of the hour is refused");

    cli.write("dir/a.bin", &test_bytes(2000, 45));
    cli.write("dir/b.bin", &test_bytes(3000, 46));
    let run = cli.run(&["upload", "dir", "--json"]);
    run.success();
    let notes: Vec<String> = run.stderr().lines().map(str::to_string).collect();
    assert_eq!(notes.len(), 1, "one note for the run: {notes:?}");
    assert!(
        notes[0].contains("instant upload") && notes[0].contains("too many attempts"),
        "{notes:?}"
    );
    let out = run.json();
    let uploads = out["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 2);
    for up in uploads {
        assert_eq!(up["instant"], false, "{up}");
        assert!(up["bytes_sent"].as_u64().unwrap() > 0, "{up}");
    }
    assert_eq!(cli.files().len(), 2);
}
