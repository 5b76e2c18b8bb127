//! Instant upload: once the server has verified some content, another user who holds the
//! same bytes gets the file by proving possession, without sending them.

use std::time::{Duration, Instant};

use crate::helpers::{Cli, str_field, test_bytes};

/// Waits (up to 60 s) until the server reports the file verified by its transfer.
#[track_caller]
fn wait_verified(cli: &Cli, file_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let files = cli.files();
        let file = files
            .iter()
            .find(|f| f["file_id"] == file_id)
            .unwrap_or_else(|| panic!("{file_id} not listed: {files:?}"));
        if file["verified"] == true {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not verified within 60 s: {file}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

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
