//! Transfers: parallel multipart upload, listing, directories, rename and delete, and
//! resuming an interrupted upload.

use crate::helpers::{Cli, MIB, str_field, test_bytes};

/// A 12 MiB file in three parts sent three at a time is listed with its declared hash.
#[test]
fn parallel_upload_is_listed_with_its_hash() {
    let cli = Cli::logged_in();
    let data = test_bytes(12 * MIB + 5, 1);
    cli.write("big.bin", &data);

    let out = cli.json(&[
        "upload",
        "big.bin",
        "--concurrency",
        "3",
        "--part-size",
        "5MiB",
    ]);
    let uploads = out["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 1);
    let up = &uploads[0];
    assert_eq!(up["part_count"], 3);
    assert_eq!(up["parts_sent"], 3);
    assert_eq!(up["parts_already_stored"], 0);
    assert_eq!(up["resumed"], false);
    assert_eq!(up["bytes_sent"], data.len());
    assert_eq!(up["file"]["name"], "big.bin");
    assert_eq!(up["file"]["size"], data.len());
    let sha = sha256_hex(&data);
    assert_eq!(up["file"]["sha256"], sha.as_str(), "declared hash recorded");
    assert!(
        cli.resume_states().is_empty(),
        "state cleared after complete"
    );

    let files = cli.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0], up["file"]);
}

/// A directory uploads recursively, each file named by its relative path; empty files too.
#[test]
fn directory_uploads_recursively() {
    let cli = Cli::logged_in();
    cli.write("photos/a.jpg", &test_bytes(1000, 2));
    cli.write("photos/2024/june/b.jpg", &test_bytes(70_000, 3));
    cli.write("photos/empty.txt", b"");

    let out = cli.json(&["upload", "photos"]);
    let names: Vec<&str> = out["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["file"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "photos__2024__june__b.jpg",
            "photos__a.jpg",
            "photos__empty.txt"
        ]
    );

    let files = cli.files();
    assert_eq!(files.len(), 3);
    let sizes: Vec<u64> = files.iter().map(|f| f["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [70_000, 1000, 0]);
    assert_eq!(cli.json(&["whoami"])["file_count"], 3);
}

/// `mv` renames (ls shows the new name), `rm` deletes (ls no longer shows it, a second
/// `rm` is a 404).
#[test]
fn mv_renames_and_rm_deletes() {
    let cli = Cli::logged_in();
    cli.write("notes.txt", b"hello");
    let up = cli.json(&["upload", "notes.txt", "--name", "first.txt"]);
    let id = str_field(&up["uploads"][0]["file"], "file_id").to_string();
    assert_eq!(up["uploads"][0]["file"]["name"], "first.txt");

    let renamed = cli.json(&["mv", &id, "second.txt"]);
    assert_eq!(renamed["name"], "second.txt");
    assert_eq!(renamed["file_id"], id.as_str());
    let listed = cli.files();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "second.txt");

    let run = cli.run(&["rm", &id]);
    run.success();
    assert_eq!(run.stdout().trim(), format!("deleted {id}"));
    assert!(cli.files().is_empty());
    let line = cli.run(&["rm", &id]).failure();
    assert!(line.contains("(HTTP 404)"), "{line}");
}

/// An upload interrupted after one of three parts leaves resume state; the re-run asks S3
/// which parts it holds and sends only the other two, then forgets the state.
#[test]
fn interrupted_upload_resumes_sending_only_missing_parts() {
    let cli = Cli::logged_in();
    let data = test_bytes(12 * MIB, 4);
    cli.write("resume.bin", &data);
    let args = [
        "upload",
        "resume.bin",
        "--part-size",
        "5MiB",
        "--concurrency",
        "1",
    ];

    let mut first = cli.command(&args);
    first.env("FILESTORE_TEST_STOP_AFTER_PARTS", "1");
    let line = cli.run_with(first).failure();
    assert!(line.contains("interrupted after 1 parts"), "{line}");
    assert_eq!(cli.resume_states().len(), 1, "state kept for the re-run");
    assert!(cli.files().is_empty(), "nothing completed");

    let out = cli.json(&args);
    let up = &out["uploads"][0];
    assert_eq!(up["resumed"], true);
    assert_eq!(up["part_count"], 3);
    assert_eq!(up["parts_already_stored"], 1);
    assert_eq!(up["parts_sent"], 2, "only the missing parts were sent");
    assert_eq!(up["bytes_sent"], 7 * MIB);
    assert!(
        cli.resume_states().is_empty(),
        "state cleared after complete"
    );

    let files = cli.files();
    assert_eq!(files.len(), 1, "one upload, one file");
    assert_eq!(files[0]["size"], data.len());
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
