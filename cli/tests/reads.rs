//! Uploads read each byte of a file once: the parts go out of the buffers they were read
//! into and are hashed in order on the way, so the hash the server ends up with is the
//! file's; instant upload and resume still work; a file that changes meanwhile is refused,
//! never stored under a wrong hash.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::helpers::{Cli, MIB, sha256_hex, str_field, test_bytes, wait_verified};

const PART: usize = 5 * MIB;

/// Above this a file is not hashed before it is sent (the CLI's `FIRST_PASS_MAX`).
const FIRST_PASS_MAX: usize = 16 * MIB;

/// Sizes at the part boundaries, below the first-pass size (the hash is declared, and
/// checked against the parts as read) and above it (the parts alone give the hash): every
/// file's SHA-256, as the upload reports it and as the server computes it once it has read
/// the stored bytes, is the file's.
#[test]
fn the_recorded_hash_is_the_files_at_part_boundaries() {
    let cli = Cli::logged_in();
    let sizes = [0, 1, PART - 1, PART, PART + 1, 3 * PART + 7, 4 * PART + 3];
    for (i, &size) in sizes.iter().enumerate() {
        cli.write(
            &format!("sizes/{size:09}.bin"),
            &test_bytes(size, 90 + i as u64),
        );
    }
    let out = cli.json(&[
        "upload",
        "sizes",
        "--part-size",
        "5MiB",
        "--concurrency",
        "2",
    ]);
    let uploads = out["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), sizes.len());
    for (i, (up, &size)) in uploads.iter().zip(&sizes).enumerate() {
        let data = test_bytes(size, 90 + i as u64);
        let sha = sha256_hex(&data);
        assert_eq!(up["file"]["size"], size, "{up}");
        assert_eq!(up["sha256"], sha.as_str(), "{size}: {up}");
        assert_eq!(up["part_count"], size.div_ceil(PART).max(1), "{up}");
        assert_eq!(up["bytes_sent"], size, "{up}");
        if size > FIRST_PASS_MAX {
            assert_eq!(
                up["file"]["sha256"],
                serde_json::Value::Null,
                "not declared"
            );
            assert_eq!(up["hash_seconds"], 0.0, "no first pass: {up}");
        } else {
            assert_eq!(up["file"]["sha256"], sha.as_str(), "declared: {up}");
        }
        let verified = wait_verified(&cli, str_field(&up["file"], "file_id"));
        assert_eq!(verified["sha256"], sha.as_str(), "{size}: {verified}");
        assert!(verified.get("declared_sha256").is_none(), "{verified}");
    }
}

/// The bytes the process read (`rchar` of `/proc/<pid>/io`: every `read`, files and
/// sockets alike) while uploading a file too large for a first pass: each byte once, plus
/// the small answers of the API. Hashing the file before sending its parts reads it twice.
#[test]
fn a_large_upload_reads_each_byte_of_the_file_once() {
    let cli = Cli::logged_in();
    let size = 24 * MIB + 1;
    let data = test_bytes(size, 95);
    cli.write("large.bin", &data);

    // The shell reaps the upload, then reads its own counters, which now include the
    // upload's (the kernel adds a reaped child's I/O to its parent's).
    let template = cli.command(&[]);
    let mut cmd = Command::new("sh");
    cmd.current_dir(cli.work.path())
        .stdin(Stdio::null())
        .arg("-c")
        .arg(r#""$0" "$@" > up.json && cat /proc/$$/io"#)
        .arg(env!("CARGO_BIN_EXE_filestore"))
        .args([
            "upload",
            "large.bin",
            "--part-size",
            "5MiB",
            "--concurrency",
            "2",
            "--json",
        ]);
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let run = cli.run_with(cmd);
    run.success();
    let io = run.stdout();
    let read: usize = io
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap_or_else(|| panic!("no rchar in {io}"))
        .trim()
        .parse()
        .unwrap();
    assert!(read >= size, "{read} bytes read, the file has {size}");
    assert!(
        read < size + size / 2,
        "{read} bytes read for a file of {size}: some were read twice"
    );
    let out: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cli.path("up.json")).unwrap()).unwrap();
    let up = &out["uploads"][0];
    assert_eq!(up["bytes_sent"], size);
    assert_eq!(up["sha256"], sha256_hex(&data).as_str());
}

/// A large file's hash, read from its parts by the first upload, is remembered (path,
/// size, modification time): uploading it again once the server has verified its bytes
/// is an instant upload, and no byte is sent.
#[test]
fn uploading_the_same_large_bytes_again_is_instant() {
    let cli = Cli::logged_in();
    let data = test_bytes(FIRST_PASS_MAX + 3 * MIB, 96);
    cli.write("again.bin", &data);
    let out = cli.json(&["upload", "again.bin", "--part-size", "5MiB"]);
    let first = &out["uploads"][0];
    assert_eq!(first["instant"], false);
    assert_eq!(first["sha256"], sha256_hex(&data).as_str());
    wait_verified(&cli, str_field(&first["file"], "file_id"));

    let out = cli.json(&["upload", "again.bin", "--name", "copy.bin"]);
    let second = &out["uploads"][0];
    assert_eq!(second["instant"], true, "{second}");
    assert_eq!(second["bytes_sent"], 0);
    assert_eq!(second["file"]["name"], "copy.bin");
    assert_eq!(second["file"]["sha256"], sha256_hex(&data).as_str());
}

/// A large upload stopped after its first part and resumed reads the parts S3 already
/// holds for the hash (sending only the others): it ends with the file's SHA-256, and so
/// does the server.
#[test]
fn a_resumed_large_upload_ends_with_the_files_hash() {
    let cli = Cli::logged_in();
    let data = test_bytes(4 * PART + 11, 97);
    let sha = sha256_hex(&data);
    cli.write("resumed.bin", &data);
    let args = cli.interrupted_upload("resumed.bin", 1);

    let out = cli.json(&args);
    let up = &out["uploads"][0];
    assert_eq!(up["resumed"], true, "{up}");
    assert_eq!(up["parts_already_stored"], 1);
    assert_eq!(up["parts_sent"], 4);
    assert_eq!(up["sha256"], sha.as_str());
    let verified = wait_verified(&cli, str_field(&up["file"], "file_id"));
    assert_eq!(verified["sha256"], sha.as_str());
}

/// Runs `args` paused after the first part, lets `change` alter the file meanwhile, and
/// returns the run's one-line failure.
fn upload_changed_midway(cli: &Cli, args: &[&str], change: impl FnOnce()) -> String {
    let mut cmd = cli.command(args);
    cmd.env("FILESTORE_TEST_PAUSE_AFTER_PARTS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let marker = cli.config.path().join("paused");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the upload never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    change();
    std::fs::remove_file(&marker).unwrap();
    let run = crate::helpers::Run {
        output: child.wait_with_output().unwrap(),
    };
    run.failure()
}

/// A file rewritten while it uploads (after its first part is sent, before its last is
/// read) is refused with one clear line, whether its new modification time gives it away
/// (no hash declared: a large file) or only its bytes do (mtime put back; the hash
/// declared after a first pass no longer matches the parts): nothing is stored, no hash is
/// recorded, and nothing is left to resume.
#[test]
fn a_file_changed_while_uploading_is_refused() {
    let cli = Cli::logged_in();
    let args = |name: &'static str| ["upload", name, "--part-size", "5MiB", "--concurrency", "1"];
    let rewrite = |name: &str, size: usize, seed: u64, mtime: Option<SystemTime>| {
        let path = cli.path(name);
        std::fs::write(&path, test_bytes(size, seed)).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        file.set_modified(mtime.unwrap_or(later)).unwrap();
    };

    let large = 4 * PART;
    cli.write("large.bin", &test_bytes(large, 98));
    let line = upload_changed_midway(&cli, &args("large.bin"), || {
        rewrite("large.bin", large, 99, None)
    });
    assert!(
        line.starts_with("upload failed: ")
            && line.contains("large.bin changed while it was being uploaded")
            && line.contains("modification time"),
        "{line}"
    );

    let small = 2 * PART + 1;
    let path = cli.write("small.bin", &test_bytes(small, 100));
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let line = upload_changed_midway(&cli, &args("small.bin"), || {
        rewrite("small.bin", small, 101, Some(mtime))
    });
    assert!(
        line.contains("small.bin changed while it was being uploaded")
            && line.contains("no longer hash"),
        "{line}"
    );

    assert!(cli.files().is_empty(), "nothing stored: {:?}", cli.files());
    assert!(cli.resume_states().is_empty());
    assert!(cli.completed_states().is_empty());

    // Run again on the file as it is now, it uploads, with that file's hash.
    let out = cli.json(&args("small.bin"));
    assert_eq!(
        out["uploads"][0]["file"]["sha256"],
        sha256_hex(&test_bytes(small, 101)).as_str()
    );
}
