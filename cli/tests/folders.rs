//! Folders, paths and the trash from the command line: `mkdir`, `ls PATH`, `info`, `mv`,
//! `rm`, `trash`, `restore`, `purge`, paths wherever an id works, and directory uploads that
//! recreate the tree and skip what is already there.

use serde_json::Value;

use crate::helpers::{Cli, str_field, test_bytes};

fn uploaded_id(out: &Value) -> String {
    str_field(&out["uploads"][0]["file"], "file_id").to_string()
}

/// `mkdir` makes one folder under an existing one, `mkdir -p` a whole path (and accepts
/// one already there); paths with spaces and accents work everywhere, typed composed or not;
/// `ls` lists folders first, then files, by name.
#[test]
fn mkdir_ls_info_and_download_by_paths_with_spaces_and_unicode() {
    let cli = Cli::logged_in();
    let made = cli.json(&["mkdir", "/docs"]);
    assert_eq!(made["name"], "docs");
    assert_eq!(made["parent_id"], "root");

    let line = cli.run(&["mkdir", "/docs/a/b"]).failure();
    assert_eq!(
        line,
        "mkdir failed: no file or folder at /docs/a; see what is there with `filestore ls /FOLDER`"
    );
    let deep = cli.json(&["mkdir", "-p", "/docs/my files/été 2024"]);
    let again = cli.json(&["mkdir", "-p", "/docs/my files/été 2024/"]);
    assert_eq!(
        again["folder_id"], deep["folder_id"],
        "found, not made twice"
    );
    let line = cli.run(&["mkdir", "/docs"]).failure();
    assert!(line.starts_with("mkdir failed: "), "{line}");
    assert!(line.contains("(HTTP 409)"), "{line}");
    assert!(line.ends_with("move or remove the one there"), "{line}");

    let data = test_bytes(3000, 11);
    cli.write("report 1.pdf", &data);
    let up = cli.json(&["upload", "report 1.pdf", "--to", "/docs/my files/été 2024"]);
    assert_eq!(
        up["uploads"][0]["remote_path"],
        "/docs/my files/été 2024/report 1.pdf"
    );
    assert_eq!(up["uploads"][0]["file"]["parent_id"], deep["folder_id"]);
    cli.write("z.txt", b"z");
    cli.json(&["upload", "z.txt"]);
    cli.json(&["mkdir", "/a folder"]);

    assert_eq!(cli.names("/"), ["a folder/", "docs/", "z.txt"]);
    assert_eq!(cli.names("/docs/my files"), ["été 2024/"]);
    // The same path with the accents as combining characters (as macOS spells file names).
    let decomposed = "/docs/my files/e\u{301}te\u{301} 2024";
    assert_eq!(cli.names(decomposed), ["report 1.pdf"]);

    let info = cli.json(&["info", "/docs/my files/été 2024"]);
    assert_eq!(info["path"], "/docs/my files/été 2024");
    let by_id = cli.json(&["info", str_field(&deep, "folder_id")]);
    assert_eq!(by_id["path"], "/docs/my files/été 2024");
    let file = cli.json(&["info", "/docs/my files/été 2024/report 1.pdf"]);
    assert_eq!(file["type"], "file");
    assert_eq!(file["size"], 3000);
    let text = cli.run(&["ls", "/docs"]);
    text.success();
    assert!(
        text.stdout().trim_end().ends_with("my files/"),
        "{}",
        text.stdout()
    );

    cli.json(&[
        "download",
        "/docs/my files/été 2024/report 1.pdf",
        "-o",
        "copy.pdf",
    ]);
    assert!(std::fs::read(cli.path("copy.pdf")).unwrap() == data);
    let listed = cli.json(&["ls", "/z.txt"]);
    assert_eq!(listed["entries"][0]["name"], "z.txt");

    for (args, line) in [
        (
            vec!["ls", "/nope"],
            "ls failed: no file or folder at /nope; see what is there with `filestore ls /FOLDER`",
        ),
        (
            vec!["download", "/docs/missing.pdf"],
            "download failed: no file or folder at /docs/missing.pdf; see what is there with `filestore ls /FOLDER`",
        ),
        (
            vec!["download", "/docs"],
            "download failed: /docs is a folder, not a file",
        ),
        (
            vec!["upload", "z.txt", "--to", "/z.txt"],
            "upload failed: /z.txt is a file, not a folder",
        ),
    ] {
        assert_eq!(cli.run(&args).failure(), line);
    }
}

/// A directory upload into `--to` makes the folders; run again (even with the local resume
/// state gone) it finds every file there with the same size and SHA-256 and sends nothing.
/// A file changed since is uploaded again as the server's `--on-conflict` says.
#[test]
fn directory_upload_makes_the_tree_and_a_rerun_uploads_nothing() {
    let cli = Cli::logged_in();
    cli.write("site/index.html", &test_bytes(2000, 21));
    cli.write("site/css/main.css", &test_bytes(700, 22));
    cli.write("site/img/logo ünï.png", &test_bytes(90_000, 23));
    let first = cli.json(&["upload", "site", "--to", "/backup/2026"]);
    assert_eq!(first["uploads"].as_array().unwrap().len(), 3);
    assert_eq!(
        cli.names("/backup/2026/site"),
        ["css/", "img/", "index.html"]
    );
    assert_eq!(cli.names("/backup/2026/site/img"), ["logo ünï.png"]);

    std::fs::remove_dir_all(cli.config.path().join("uploads")).unwrap();
    let again = cli.json(&["upload", "site", "--to", "/backup/2026"]);
    let ups = again["uploads"].as_array().unwrap();
    assert_eq!(ups.len(), 3);
    for (up, before) in ups.iter().zip(first["uploads"].as_array().unwrap()) {
        assert_eq!(up["already_uploaded"], true, "{up}");
        assert_eq!(up["bytes_sent"], 0, "{up}");
        assert_eq!(up["file"]["file_id"], before["file"]["file_id"]);
    }
    assert_eq!(cli.files().len(), 3, "no second file");

    // index.html changed: by default the server renames the new one; `fail` refuses;
    // `replace` puts the old one in the trash.
    cli.write("site/index.html", &test_bytes(2100, 24));
    let line = cli
        .run(&[
            "upload",
            "site",
            "--to",
            "/backup/2026",
            "--on-conflict",
            "fail",
        ])
        .failure();
    assert!(line.starts_with("upload failed: "), "{line}");
    assert!(line.contains("(HTTP 409)"), "{line}");
    let replaced = cli.json(&[
        "upload",
        "site",
        "--to",
        "/backup/2026",
        "--on-conflict",
        "replace",
    ]);
    let index = &replaced["uploads"][2];
    assert_eq!(index["remote_path"], "/backup/2026/site/index.html");
    assert_eq!(index["already_uploaded"], false);
    assert_eq!(
        cli.names("/backup/2026/site"),
        ["css/", "img/", "index.html"]
    );
    let trash = cli.json(&["trash"]);
    assert_eq!(trash["entries"][0]["name"], "index.html");
    cli.write("site/index.html", &test_bytes(2200, 25));
    let renamed = cli.json(&["upload", "site", "--to", "/backup/2026"]);
    assert_eq!(
        renamed["uploads"][2]["remote_path"],
        "/backup/2026/site/index (1).html"
    );
}

/// Two uploads of the same tree into the same new folder at the same moment both succeed,
/// and every directory becomes exactly one folder: the one that loses a create
/// (`409 name_taken`) uses the folder the other made.
#[test]
fn concurrent_directory_uploads_share_the_folders_they_both_make() {
    let cli = Cli::logged_in();
    for dir in ["a/b/c", "a/d", "e"] {
        cli.write(&format!("tree/{dir}/f.txt"), b"f");
    }
    for trial in 0..4 {
        let to = format!("/race{trial}");
        let runs: Vec<_> = (0..2)
            .map(|_| {
                cli.command(&["upload", "tree", "--to", &to])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("the binary runs")
            })
            .collect();
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(cli.names(&to), ["tree/"]);
        assert_eq!(cli.names(&format!("{to}/tree")), ["a/", "e/"]);
        assert_eq!(cli.names(&format!("{to}/tree/a")), ["b/", "d/"]);
        assert_eq!(cli.names(&format!("{to}/tree/a/b")), ["c/"]);
    }
}

/// `mv` renames in place, moves into a folder (`DST/` or an existing folder), moves and
/// renames at once, moves a folder with what it holds, and refuses a cycle and a taken name
/// in one line each.
#[test]
fn mv_renames_moves_and_refuses_cycles_and_taken_names() {
    let cli = Cli::logged_in();
    cli.json(&["mkdir", "-p", "/a/b"]);
    cli.write("x.txt", b"x");
    let id = uploaded_id(&cli.json(&["upload", "x.txt"]));

    let moved = cli.json(&["mv", "/x.txt", "/a/"]);
    assert_eq!(moved["file_id"], id.as_str());
    assert_eq!(cli.names("/a"), ["b/", "x.txt"]);
    cli.json(&["mv", "/a/x.txt", "/a/b/y.txt"]);
    assert_eq!(cli.names("/a/b"), ["y.txt"]);
    let renamed = cli.json(&["mv", "/a/b/y.txt", "z.txt"]);
    assert_eq!(renamed["name"], "z.txt");
    assert_eq!(cli.names("/a/b"), ["z.txt"]);
    cli.json(&["mv", &id, "/"]);
    assert_eq!(cli.names("/"), ["a/", "z.txt"]);
    cli.json(&["mv", &id, "/a/b"]);

    for dst in ["/a/b", "/a/b/", "/a"] {
        let line = cli.run(&["mv", "/a", dst]).failure();
        assert!(line.starts_with("mv failed: "), "{line}");
        assert!(
            line.ends_with("(HTTP 409); choose a folder outside the one being moved"),
            "{line}"
        );
    }
    cli.write("other.txt", b"o");
    cli.json(&["upload", "other.txt", "--to", "/a/b"]);
    let line = cli.run(&["mv", "/a/b/other.txt", "z.txt"]).failure();
    assert!(
        line.ends_with("(HTTP 409); choose another name, or move or remove the one there"),
        "{line}"
    );

    // A folder moves with everything in it, by path or by id.
    let b = cli.json(&["info", "/a/b"]);
    cli.json(&["mv", "/a/b", "/"]);
    assert_eq!(cli.names("/"), ["a/", "b/"]);
    assert_eq!(cli.names("/b"), ["other.txt", "z.txt"]);
    cli.json(&["mv", str_field(&b["folder"], "folder_id"), "renamed b"]);
    assert_eq!(cli.names("/renamed b"), ["other.txt", "z.txt"]);
    let line = cli.run(&["mv", "/", "/a/"]).failure();
    assert!(line.contains("(HTTP 400)"), "{line}");
}

/// `rm` moves a file to the trash, `trash` lists it, `restore` brings it back (where it was
/// or elsewhere under another name), `purge` frees its space; `purge --all` empties the trash.
#[test]
fn rm_then_restore_and_purge() {
    let cli = Cli::logged_in();
    cli.json(&["mkdir", "-p", "/docs/old"]);
    cli.write("a.txt", &test_bytes(4000, 31));
    cli.write("b.txt", &test_bytes(6000, 32));
    let a = uploaded_id(&cli.json(&["upload", "a.txt", "--to", "/docs"]));
    let b = uploaded_id(&cli.json(&["upload", "b.txt", "--to", "/docs"]));

    let line = cli.run(&["rm", "/docs/old"]).usage_failure();
    assert!(line.contains("`filestore rm -r /docs/old`"), "{line}");
    let gone = cli.json(&["rm", "/docs/a.txt"]);
    assert_eq!(gone["trashed"], a.as_str());
    assert_eq!(cli.names("/docs"), ["old/", "b.txt"]);
    let trash = cli.json(&["trash"]);
    assert_eq!(trash["entries"][0]["id"], a.as_str());
    assert_eq!(trash["entries"][0]["type"], "file");
    assert!(
        trash["entries"][0]["original_parent_id"].is_string(),
        "{trash}"
    );
    let me = cli.json(&["whoami"]);
    assert_eq!(me["used_bytes"], 10_000, "trashed bytes still count");
    assert_eq!(me["trash_bytes"], 4000);
    let listed = cli.run(&["trash"]);
    listed.success();
    assert!(listed.stdout().contains("a.txt"), "{}", listed.stdout());

    let back = cli.json(&["restore", &a]);
    assert_eq!(back["type"], "file");
    assert_eq!(cli.names("/docs"), ["old/", "a.txt", "b.txt"]);
    cli.json(&["rm", &a]);
    cli.json(&["restore", &a, "--to", "/docs/old", "--name", "a2.txt"]);
    assert_eq!(cli.names("/docs/old"), ["a2.txt"]);
    let line = cli.run(&["restore", &a]).failure();
    assert!(line.contains("(HTTP 404)"), "{line}");
    assert!(line.ends_with("`filestore trash`"), "{line}");

    cli.json(&["rm", "/docs/old/a2.txt"]);
    cli.json(&["purge", &a]);
    assert_eq!(cli.json(&["trash"])["entries"], serde_json::json!([]));
    assert_eq!(cli.json(&["whoami"])["used_bytes"], 6000, "space freed");
    let line = cli.run(&["purge", &a]).failure();
    assert!(line.ends_with("`filestore trash`"), "{line}");

    cli.json(&["rm", &b]);
    cli.write("c.txt", b"c");
    cli.json(&["upload", "c.txt"]);
    cli.json(&["rm", "/c.txt"]);
    assert_eq!(cli.json(&["trash"])["entries"].as_array().unwrap().len(), 2);
    let run = cli.run(&["purge", "--all"]);
    run.success();
    assert_eq!(run.stdout().trim(), "the trash is empty");
    assert_eq!(cli.json(&["trash"])["entries"], serde_json::json!([]));
    assert_eq!(cli.json(&["whoami"])["used_bytes"], 0);
}

/// Share links and their listing take a path too.
#[test]
fn share_commands_take_paths() {
    let cli = Cli::logged_in();
    let data = test_bytes(1500, 41);
    cli.write("s.bin", &data);
    cli.json(&["upload", "s.bin", "--to", "/shared stuff"]);
    let share = cli.json(&["share", "/shared stuff/s.bin"]);
    let fetched = reqwest::blocking::get(share["url"].as_str().unwrap()).unwrap();
    assert_eq!(fetched.bytes().unwrap().to_vec(), data);
    let listed = cli.json(&["shares", "/shared stuff/s.bin"]);
    assert_eq!(listed["shares"][0]["downloads"], 1);
}

/// A file uploaded under a name the server chose (`readme (1).txt`, since `readme.txt` held
/// other bytes) is recognised on a re-run and not uploaded a third time.
#[test]
fn a_rerun_skips_a_file_the_server_renamed() {
    let cli = Cli::logged_in();
    cli.write("old/readme.txt", b"old words");
    cli.json(&["upload", "old/readme.txt", "--to", "/docs"]);
    cli.write("readme.txt", b"new words");
    let first = cli.json(&["upload", "readme.txt", "--to", "/docs"]);
    assert_eq!(first["uploads"][0]["remote_path"], "/docs/readme (1).txt");
    let again = cli.json(&["upload", "readme.txt", "--to", "/docs"]);
    assert_eq!(again["uploads"][0]["already_uploaded"], true, "{again}");
    assert_eq!(again["uploads"][0]["remote_path"], "/docs/readme (1).txt");
    assert_eq!(cli.names("/docs"), ["readme (1).txt", "readme.txt"]);
}

/// `ls`, `ls --flat`, `trash` and an upload's listing of its folder walk every page: with
/// pages of 4 entries, every entry is listed once, in order.
#[test]
fn listings_walk_every_page() {
    let cli = Cli::logged_in();
    cli.json(&["mkdir", "/big"]);
    let folders: Vec<String> = (0..9).map(|n| format!("f{n}")).collect();
    for name in &folders {
        cli.json(&["mkdir", &format!("/big/{name}")]);
    }
    for n in 0..5 {
        cli.write(&format!("files/g{n}.txt"), format!("g{n}").as_bytes());
    }
    cli.json(&["upload", "files", "--to", "/big"]);
    cli.json(&["mv", "/big/files", "/big/f9"]);
    let paged = |args: &[&str]| {
        let mut cmd = cli.command(&[args, &["--json"]].concat());
        cmd.env("FILESTORE_TEST_PAGE_LIMIT", "4");
        let run = cli.run_with(cmd);
        run.success();
        run.json()
    };
    let mut expected: Vec<String> = (0..10).map(|n| format!("f{n}/")).collect();
    let listed: Vec<String> = paged(&["ls", "/big"])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}/", str_field(e, "name")))
        .collect();
    assert_eq!(listed, expected);
    expected = (0..5).map(|n| format!("g{n}.txt")).collect();
    let listed: Vec<String> = paged(&["ls", "/big/f9"])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| str_field(e, "name").to_string())
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        paged(&["ls", "--flat"])["files"].as_array().unwrap().len(),
        5
    );

    // Every file is found in the folder's listing (the last one on its second page).
    std::fs::remove_dir_all(cli.config.path().join("uploads")).unwrap();
    let local: Vec<String> = (0..5).map(|n| format!("files/g{n}.txt")).collect();
    let mut args = vec!["upload", "--to", "/big/f9", "--on-conflict", "fail"];
    args.extend(local.iter().map(String::as_str));
    let again = paged(&args);
    let ups = again["uploads"].as_array().unwrap();
    assert_eq!(ups.len(), 5);
    assert!(ups.iter().all(|u| u["already_uploaded"] == true), "{again}");

    for n in 0..5 {
        cli.json(&["rm", &format!("/big/f9/g{n}.txt")]);
    }
    assert_eq!(paged(&["trash"])["entries"].as_array().unwrap().len(), 5);
}

/// `rm -r` moves a folder and everything below it to the trash (a path or an id; one trash
/// entry whose size is the subtree's bytes); `restore` brings the whole tree back, `purge`
/// frees its space. A file whose folder is in the trash restores only with `--to`
/// (`parent_gone`), and the root folder cannot be removed (`root_folder`).
#[test]
fn rm_r_trashes_a_folder_with_its_tree_and_restore_brings_it_back() {
    let cli = Cli::logged_in();
    cli.write("proj/src/main.rs", &test_bytes(1200, 51));
    cli.write("proj/README", &test_bytes(300, 52));
    cli.json(&["upload", "proj"]);
    cli.write("notes.txt", &test_bytes(100, 53));
    let notes = uploaded_id(&cli.json(&["upload", "notes.txt", "--to", "/proj"]));

    // The file first, then its folder: the file's own place is gone when restored alone.
    cli.json(&["rm", "/proj/notes.txt"]);
    let gone = cli.json(&["rm", "-r", "/proj"]);
    assert_eq!(gone["type"], "folder");
    let proj = str_field(&gone, "trashed").to_string();
    assert!(cli.names("/").is_empty());
    let line = cli.run(&["ls", "/proj/src"]).failure();
    assert!(line.contains("no file or folder at /proj/src"), "{line}");
    let trash = cli.json(&["trash"]);
    let entry = &trash["entries"][0];
    assert_eq!(entry["id"], proj.as_str());
    assert_eq!(entry["type"], "folder");
    assert_eq!(entry["size"], 1500, "the subtree's bytes");

    let line = cli.run(&["restore", &notes]).failure();
    assert!(line.starts_with("restore failed: "), "{line}");
    assert!(
        line.ends_with("(HTTP 409); restore its folder first, or choose another with --to PATH"),
        "{line}"
    );
    cli.json(&["restore", &proj]);
    assert_eq!(cli.names("/proj"), ["src/", "README"]);
    assert_eq!(cli.names("/proj/src"), ["main.rs"]);
    cli.json(&["restore", &notes, "--to", "/proj/src"]);
    assert_eq!(cli.names("/proj/src"), ["main.rs", "notes.txt"]);

    let line = cli.run(&["rm", "-r", "/"]).failure();
    assert!(line.contains("(HTTP 400)"), "{line}");
    assert!(
        line.ends_with("the root folder `/` stays where it is"),
        "{line}"
    );

    let src = cli.json(&["info", "/proj/src"]);
    cli.json(&["rm", "-r", str_field(&src["folder"], "folder_id")]);
    assert_eq!(cli.names("/proj"), ["README"]);
    cli.json(&["rm", "-r", "/proj"]);
    cli.json(&["purge", &proj]);
    cli.run(&["purge", "--all"]).success();
    assert_eq!(cli.json(&["whoami"])["used_bytes"], 0);
}
