//! Transfers: parallel multipart upload, listing, download byte for byte, directories,
//! rename and delete, and resuming both directions after an interruption.

use crate::helpers::{Cli, MIB, sha256_hex, str_field, test_bytes, upload_part_by_part};

/// A 12 MiB file in three parts sent three at a time is listed and comes back byte for
/// byte; the download checks the hash once the server has verified it, and says in one line
/// when it has not yet.
#[test]
fn parallel_upload_lists_and_downloads_byte_for_byte() {
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
        "nothing left to resume after complete"
    );
    assert_eq!(cli.completed_states().len(), 1, "the File is remembered");

    let files = cli.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0], up["file"]);
    let id = str_field(&files[0], "file_id");

    let run = cli.run(&["download", id, "-o", "copy.bin"]);
    run.success();
    assert!(
        run.stdout().starts_with("downloaded \"big.bin\""),
        "{}",
        run.stdout()
    );
    // The transfer verifies the file in the background, so either the download says in one
    // line that the hash is not checked yet, or it checked it and says nothing.
    let unverified = run.stderr().contains("not verified");
    assert!(
        run.stderr().is_empty() || (unverified && run.stderr().lines().count() == 1),
        "one line about the unchecked hash, or none: {}",
        run.stderr()
    );
    assert!(
        std::fs::read(cli.path("copy.bin")).unwrap() == data,
        "bytes differ"
    );

    let down = cli.json(&["download", id, "-o", "copy2.bin"]);
    assert_eq!(down["bytes_downloaded"], data.len());
    assert_eq!(down["resumed_from"], 0);
    assert_eq!(down["sha256"], sha.as_str());
    if unverified {
        // Verified meanwhile at the latest now; once verified, always checked.
        assert!(down["sha256_checked"].is_boolean());
    } else {
        assert_eq!(down["sha256_checked"], true);
    }
    assert!(std::fs::read(cli.path("copy2.bin")).unwrap() == data);

    // The default target is the file's name: here, the original. Nothing replaces a file
    // that is already there, unless asked to.
    std::fs::write(cli.path("big.bin"), b"local edits").unwrap();
    let line = cli.run(&["download", id]).failure();
    assert_eq!(
        line,
        "download failed: big.bin already exists; pass --force to replace it, or -o another path"
    );
    assert_eq!(std::fs::read(cli.path("big.bin")).unwrap(), b"local edits");
    assert!(
        !cli.path(&format!(".filestore-{id}.part")).exists(),
        "nothing fetched"
    );
    cli.json(&["download", id, "--force"]);
    assert!(std::fs::read(cli.path("big.bin")).unwrap() == data);
}

/// A directory uploads as a folder of the same name holding its tree (empty files and
/// empty directories too), and each file downloads by its path.
#[test]
fn directory_uploads_recreate_the_tree_as_folders() {
    let cli = Cli::logged_in();
    cli.write("photos/a.jpg", &test_bytes(1000, 2));
    cli.write("photos/2024/june/b.jpg", &test_bytes(70_000, 3));
    cli.write("photos/empty.txt", b"");
    std::fs::create_dir_all(cli.path("photos/nothing")).unwrap();

    let out = cli.json(&["upload", "photos"]);
    let paths: Vec<&str> = out["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["remote_path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/photos/2024/june/b.jpg",
            "/photos/a.jpg",
            "/photos/empty.txt"
        ]
    );
    assert_eq!(cli.names("/"), ["photos/"]);
    assert_eq!(
        cli.names("/photos"),
        ["2024/", "nothing/", "a.jpg", "empty.txt"]
    );
    assert_eq!(cli.names("/photos/2024/june"), ["b.jpg"]);
    assert!(cli.names("/photos/nothing").is_empty());

    std::fs::create_dir(cli.path("out")).unwrap();
    for (path, original) in [
        ("/photos/a.jpg", test_bytes(1000, 2)),
        ("/photos/2024/june/b.jpg", test_bytes(70_000, 3)),
        ("/photos/empty.txt", Vec::new()),
    ] {
        cli.json(&["download", path, "-o", "out"]);
        let name = path.rsplit('/').next().unwrap();
        assert_eq!(std::fs::read(cli.path("out").join(name)).unwrap(), original);
    }
    assert_eq!(cli.json(&["whoami"])["file_count"], 3);
}

/// `mv` renames (ls shows the new name), `rm` moves it to the trash (ls no longer shows it,
/// a second `rm` is a 404).
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
    assert!(
        run.stdout()
            .starts_with(&format!("moved file {id} to the trash")),
        "{}",
        run.stdout()
    );
    assert!(cli.files().is_empty());
    let line = cli.run(&["rm", &id]).failure();
    assert!(line.contains("(HTTP 404)"), "{line}");
}

/// An upload interrupted after one of three parts leaves resume state; the re-run asks S3
/// which parts it holds and sends only the other two, then remembers the File instead.
#[test]
fn interrupted_upload_resumes_sending_only_missing_parts() {
    let cli = Cli::logged_in();
    let data = test_bytes(12 * MIB, 4);
    cli.write("resume.bin", &data);
    let args = cli.interrupted_upload("resume.bin", 1);
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
        "nothing left to resume after complete"
    );

    let files = cli.files();
    assert_eq!(files.len(), 1, "one upload, one file");
    let id = str_field(&files[0], "file_id");
    cli.json(&["download", id, "-o", "copy.bin"]);
    assert!(
        std::fs::read(cli.path("copy.bin")).unwrap() == data,
        "bytes differ"
    );
}

/// A directory upload stopped in its third file leaves the first two completed. Re-running
/// it skips them ("already uploaded", nothing sent) and resumes the third; no file is made
/// twice. A File deleted or renamed since is uploaded again; one left alone is skipped.
#[test]
fn rerun_of_a_stopped_directory_upload_skips_files_already_uploaded() {
    let cli = Cli::logged_in();
    let a = test_bytes(1000, 61);
    let b = test_bytes(70_000, 62);
    let c = test_bytes(12 * MIB, 63);
    cli.write("batch/a.bin", &a);
    cli.write("batch/b.bin", &b);
    cli.write("batch/c.bin", &c);
    let args = upload_part_by_part("batch");

    // a and b are one part each; the run stops after the first of c's three parts.
    let run = cli.run_interrupted(cli.command(&args), 3);
    assert_eq!(run.stdout().lines().count(), 2, "{}", run.stdout());
    let before = cli.files();
    assert_eq!(before.len(), 2, "a and b completed: {before:?}");
    assert_eq!(cli.completed_states().len(), 2);
    assert_eq!(cli.resume_states().len(), 1, "c can resume");
    let id_of = |files: &[serde_json::Value], name: &str| {
        files
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| str_field(f, "file_id").to_string())
            .unwrap_or_else(|| panic!("{name} not in {files:?}"))
    };
    // With --json (another user, so the counts below stay theirs), the same stop reports the
    // files stored before it on stdout.
    let scripted = Cli::logged_in();
    scripted.write("other/a.bin", &test_bytes(900, 64));
    scripted.write("other/c.bin", &test_bytes(12 * MIB, 65));
    let mut json_args = upload_part_by_part("other").to_vec();
    json_args.push("--json");
    let run = scripted.run_interrupted(scripted.command(&json_args), 2);
    let partial = run.json();
    let stored = partial["uploads"].as_array().unwrap();
    assert_eq!(stored.len(), 1, "{partial}");
    assert_eq!(stored[0]["remote_path"], "/other/a.bin");

    let a_id = id_of(&before, "a.bin");
    let b_id = id_of(&before, "b.bin");

    let out = cli.json(&args);
    let ups = out["uploads"].as_array().unwrap();
    assert_eq!(ups.len(), 3);
    for (up, id) in [(&ups[0], &a_id), (&ups[1], &b_id)] {
        assert_eq!(up["already_uploaded"], true, "{up}");
        assert_eq!(up["file"]["file_id"], id.as_str());
        assert_eq!(up["bytes_sent"], 0);
        assert_eq!(up["parts_sent"], 0);
    }
    assert_eq!(ups[2]["already_uploaded"], false);
    assert_eq!(ups[2]["resumed"], true);
    assert_eq!(ups[2]["parts_already_stored"], 1);
    assert_eq!(ups[2]["parts_sent"], 2);
    let after = cli.files();
    assert_eq!(after.len(), 3, "no second File: {after:?}");
    let c_id = id_of(&after, "c.bin");
    assert!(cli.resume_states().is_empty());
    assert_eq!(cli.completed_states().len(), 3);

    // Run again, for people: every file is reported as already uploaded.
    let run = cli.run(&args);
    run.success();
    let lines: Vec<String> = run.stdout().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.starts_with("already uploaded ")),
        "{lines:?}"
    );
    assert!(
        lines[2].ends_with(&format!("-> {c_id}; nothing sent")),
        "{lines:?}"
    );
    assert_eq!(cli.files().len(), 3);

    // b deleted and a renamed on the server: both are uploaded again, c is not.
    cli.run(&["rm", &b_id]).success();
    cli.run(&["mv", &a_id, "kept-a.bin"]).success();
    let run = cli.run(&[&args[..], &["--json"]].concat());
    run.success();
    let ups = run.json()["uploads"].as_array().unwrap().clone();
    assert_eq!(ups[0]["already_uploaded"], false, "{}", ups[0]);
    assert_eq!(ups[1]["already_uploaded"], false, "{}", ups[1]);
    assert_eq!(ups[2]["already_uploaded"], true, "{}", ups[2]);
    assert_eq!(ups[2]["file"]["file_id"], c_id.as_str());
    assert_eq!(
        run.stderr().matches("uploading it again").count(),
        2,
        "{}",
        run.stderr()
    );
    let last = cli.files();
    let mut names: Vec<&str> = last.iter().map(|f| str_field(f, "name")).collect();
    names.sort_unstable();
    assert_eq!(names, ["a.bin", "b.bin", "c.bin", "kept-a.bin"]);
    assert_eq!(
        cli.names("/batch"),
        ["a.bin", "b.bin", "c.bin", "kept-a.bin"]
    );
    let new_b = id_of(&last, "b.bin");
    assert_ne!(new_b, b_id);
    cli.json(&["download", &new_b, "-o", "b.copy"]);
    assert!(
        std::fs::read(cli.path("b.copy")).unwrap() == b,
        "bytes differ"
    );
}

/// `share` prints a link anyone can download from; `shares` lists it with its count;
/// `unshare` revokes it.
#[test]
fn share_links_can_be_made_listed_and_revoked() {
    let cli = Cli::logged_in();
    let data = test_bytes(5000, 81);
    cli.write("shared.bin", &data);
    let up = cli.json(&["upload", "shared.bin"]);
    let file_id = str_field(&up["uploads"][0]["file"], "file_id").to_string();

    let share = cli.json(&["share", &file_id, "--expires", "2h", "--max-downloads", "5"]);
    let url = share["url"].as_str().unwrap().to_string();
    assert_eq!(share["max_downloads"], 5);
    let fetched = reqwest::blocking::get(&url).unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().unwrap().to_vec(), data);

    let listed = cli.json(&["shares", &file_id]);
    assert_eq!(listed["shares"][0]["downloads"], 1);
    let share_id = share["share_id"].as_str().unwrap();
    cli.run(&["unshare", share_id]).success();
    assert_eq!(reqwest::blocking::get(&url).unwrap().status(), 404);
}
