//! Folders and paths: create, read with breadcrumbs, list in name order and in pages, rename
//! and move (cycles, depth, the root), paths, unique names across files and folders with
//! `on_conflict` at upload and instant upload, a trashed parent at complete, other users'
//! folders, and the races: one name created twice at once, crossed moves, moves (and a restore
//! and a move) that together would pass the depth limit, renames to one name.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use filestore_contract::RouteKey::{
    CompleteUpload, DeleteFile, DeleteFolder, FastUploadProof, GetFile, GetFolder, ListChildren,
    MoveFolder, RenameFile, RestoreTrash, UploadStatus,
};
use filestore_contract::api::{
    ChallengeResponse, CreateUploadResponse, Entry, EntryList, FileEnvelope, FileView,
    FolderResponse, FolderView, ProofResponse, UploadView,
};
use filestore_contract::domain::{FolderId, UploadState};
use filestore_shared::keys;
use serde_json::{Value, json};

use crate::helpers::{MIB, Resp, TestApp, answer, aws, path, sha256_hex, system, test_bytes};

async fn mkdir(app: &TestApp, name: &str, parent: &str) -> Resp {
    app.post("/v1/folders", json!({"name": name, "parent_id": parent}))
        .await
}

/// Creates a folder (201) and returns it.
async fn folder(app: &TestApp, name: &str, parent: &str) -> FolderView {
    mkdir(app, name, parent).await.expect_body(201)
}

async fn children_page(app: &TestApp, folder: &str, query: &str) -> Resp {
    app.get(&format!("{}{query}", path(ListChildren, folder)))
        .await
}

/// Every entry of a folder, page by page.
async fn all_children(app: &TestApp, folder: &str, limit: u32) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit={limit}&cursor={c}"),
            None => format!("?limit={limit}"),
        };
        let page: EntryList = children_page(app, folder, &query).await.expect_body(200);
        assert!(page.entries.len() <= limit as usize);
        entries.extend(page.entries);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return entries,
        }
    }
}

fn names(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            Entry::File(f) => format!("file:{}", f.name),
            Entry::Folder(f) => format!("folder:{}", f.name),
        })
        .collect()
}

/// The file an entry is, as `(id, name, folder)`: the transfer may verify it meanwhile.
fn file_place(entry: &Entry) -> (String, String, FolderId) {
    match entry {
        Entry::File(f) => (f.file_id.to_string(), f.name.clone(), f.parent_id.clone()),
        Entry::Folder(f) => panic!("a folder, not a file: {f:?}"),
    }
}

fn place_of(file: &FileView) -> (String, String, FolderId) {
    file_place(&Entry::File(file.clone()))
}

async fn at_path(app: &TestApp, p: &str) -> Resp {
    let encoded: String =
        percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC).to_string();
    app.get(&format!("/v1/paths?path={encoded}")).await
}

async fn create_upload(app: &TestApp, body: Value) -> Resp {
    app.post("/v1/uploads", body).await
}

/// Sends every part of `data` for an upload created elsewhere, without completing it.
async fn send_all(app: &TestApp, upload: &CreateUploadResponse, data: &[u8]) {
    let all: Vec<u64> = (1..=upload.part_count).collect();
    app.send_parts(upload, data, &all).await;
}

/// Uploads `data` as `name` into `parent` with `on_conflict` (default if `None`).
async fn upload_into(
    app: &TestApp,
    name: &str,
    parent: &str,
    on_conflict: Option<&str>,
    data: &[u8],
) -> Resp {
    let mut body = json!({"name": name, "size": data.len(), "parent_id": parent});
    if let Some(c) = on_conflict {
        body["on_conflict"] = json!(c);
    }
    let upload: CreateUploadResponse = create_upload(app, body).await.expect_body(201);
    send_all(app, &upload, data).await;
    app.post(&path(CompleteUpload, &upload.upload_id), json!({}))
        .await
}

async fn file_in(app: &TestApp, name: &str, parent: &str, data: &[u8]) -> FileView {
    upload_into(app, name, parent, None, data)
        .await
        .expect_body::<FileEnvelope>(201)
        .file
}

/// Sets or removes `trashed_at` on a folder behind the API's back, as trashing it does.
async fn mark_trashed(app: &TestApp, folder: &FolderId, trashed: bool) {
    let (_, ddb) = aws().await;
    let update = ddb
        .update_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(keys::user_pk(&app.user_id)))
        .key("SK", AttributeValue::S(keys::folder_sk(folder)));
    let update = if trashed {
        update
            .update_expression("SET trashed_at = :t")
            .expression_attribute_values(":t", AttributeValue::S("2026-01-01T00:00:00Z".into()))
    } else {
        update.update_expression("REMOVE trashed_at")
    };
    update.send().await.unwrap();
}

/// A folder is created in the root or in another folder; it reads back with its ancestors
/// from the root down (breadcrumbs), and the root itself reads as `root` with no parent.
#[tokio::test]
async fn folders_are_created_and_read_with_their_ancestors() {
    let app = TestApp::new().await;
    let docs = folder(&app, "docs", "root").await;
    assert_eq!(docs.parent_id, Some(FolderId::root()));
    assert_eq!(docs.name, "docs");
    // parent_id may be left out: the root.
    let plain: FolderView = app
        .post("/v1/folders", json!({"name": "plain"}))
        .await
        .expect_body(201);
    assert_eq!(plain.parent_id, Some(FolderId::root()));
    let year = folder(&app, "2024", docs.folder_id.as_str()).await;
    let read: FolderResponse = app
        .get(&path(GetFolder, &year.folder_id))
        .await
        .expect_body(200);
    assert_eq!(read.folder, year);
    let crumbs: Vec<(&str, &str)> = read
        .ancestors
        .iter()
        .map(|a| (a.folder_id.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(crumbs, [("root", ""), (docs.folder_id.as_str(), "docs")]);

    let root: FolderResponse = app.get(&path(GetFolder, "root")).await.expect_body(200);
    assert_eq!(root.folder.folder_id, FolderId::root());
    assert_eq!(root.folder.name, "");
    assert_eq!(root.folder.parent_id, None);
    assert!(root.ancestors.is_empty());
    let raw = app.get(&path(GetFolder, "root")).await.expect(200);
    assert_eq!(raw["folder"]["parent_id"], Value::Null);

    // Bad input: no name, a bad name, unknown fields, a parent that is not an id.
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "a/b"}),
        json!({"name": ".."}),
        json!({"name": "x", "extra": 1}),
        json!({"name": "x", "parent_id": "nope"}),
    ] {
        app.post("/v1/folders", body)
            .await
            .expect_error(400, "invalid_request");
    }
    for bad in ["nope", &uuid::Uuid::now_v7().to_string()] {
        app.get(&path(GetFolder, bad))
            .await
            .expect_error(404, "not_found");
    }
}

/// A folder lists its folders first, then its files, each by the bytes of their names;
/// pages of any size give every entry once; a cursor is only good for its own folder.
#[tokio::test]
async fn children_list_folders_first_then_files_by_name_bytes_in_pages() {
    let app = TestApp::new().await;
    for name in ["b", "A", "é", "a"] {
        folder(&app, name, "root").await;
    }
    for name in ["z.txt", "B.txt", "ä.txt", "a.txt"] {
        file_in(&app, name, "root", name.as_bytes()).await;
    }
    let expected = [
        "folder:A",
        "folder:a",
        "folder:b",
        "folder:é",
        "file:B.txt",
        "file:a.txt",
        "file:z.txt",
        "file:ä.txt",
    ];
    for limit in [1, 2, 3, 8, 100] {
        assert_eq!(names(&all_children(&app, "root", limit).await), expected);
    }
    let first: EntryList = children_page(&app, "root", "?limit=8")
        .await
        .expect_body(200);
    assert_eq!(first.next_cursor, None);
    let raw = children_page(&app, "root", "?limit=1").await.expect(200);
    assert_eq!(raw["entries"][0]["type"], "folder");
    assert_eq!(raw["entries"][0]["folder_id"].as_str().unwrap().len(), 36);
    let files = children_page(&app, "root", "?limit=5").await.expect(200);
    assert_eq!(files["entries"][4]["type"], "file");
    assert_eq!(files["entries"][4]["parent_id"], "root");

    // A cursor of the root's listing is no cursor for another folder's, nor is garbage.
    let page: EntryList = children_page(&app, "root", "?limit=1")
        .await
        .expect_body(200);
    let cursor = page.next_cursor.unwrap();
    let other = folder(&app, "other", "root").await;
    children_page(&app, other.folder_id.as_str(), &format!("?cursor={cursor}"))
        .await
        .expect_error(400, "invalid_cursor");
    for query in [
        "?cursor=!!!",
        "?cursor=Zm9v",
        "?limit=0",
        "?limit=1001",
        "?limit=x",
    ] {
        let resp = children_page(&app, "root", query).await;
        assert_eq!(resp.status, 400, "{query}");
    }
    // An empty folder, and one that does not exist.
    let empty: EntryList = children_page(&app, other.folder_id.as_str(), "")
        .await
        .expect_body(200);
    assert!(empty.entries.is_empty());
    children_page(&app, &uuid::Uuid::now_v7().to_string(), "")
        .await
        .expect_error(404, "not_found");
}

/// Names are unique per folder across files and folders; the same name in another folder is
/// fine, and names compare in NFC.
#[tokio::test]
async fn names_are_unique_per_folder_across_files_and_folders() {
    let app = TestApp::new().await;
    folder(&app, "report", "root").await;
    mkdir(&app, "report", "root")
        .await
        .expect_error(409, "name_taken");
    // A file may not take a folder's name either (fail), and is renamed by default.
    create_upload(
        &app,
        json!({"name": "report", "size": 1, "on_conflict": "fail"}),
    )
    .await
    .expect_error(409, "name_taken");
    let renamed = file_in(&app, "report", "root", b"r").await;
    assert_eq!(renamed.name, "report (1)");
    mkdir(&app, "report (1)", "root")
        .await
        .expect_error(409, "name_taken");
    // Composed and decomposed spellings are one name.
    folder(&app, "caf\u{e9}", "root").await;
    mkdir(&app, "cafe\u{301}", "root")
        .await
        .expect_error(409, "name_taken");
    // Elsewhere the name is free.
    let docs = folder(&app, "docs", "root").await;
    folder(&app, "report", docs.folder_id.as_str()).await;
}

/// Uploads go into the folder given, renamed `name (1).ext`, `name (2).ext`... when the name
/// is taken (the default), and `GET /v1/files` still lists every file in every folder.
#[tokio::test]
async fn uploads_go_into_their_folder_and_are_renamed_on_conflict() {
    let app = TestApp::new().await;
    let docs = folder(&app, "docs", "root").await;
    let docs_id = docs.folder_id.as_str();
    let first = file_in(&app, "report.pdf", docs_id, b"1").await;
    assert_eq!(first.parent_id, docs.folder_id);
    let second = file_in(&app, "report.pdf", docs_id, b"2").await;
    assert_eq!(second.name, "report (1).pdf");
    let third = upload_into(&app, "report.pdf", docs_id, Some("rename"), b"3")
        .await
        .expect_body::<FileEnvelope>(201)
        .file;
    assert_eq!(third.name, "report (2).pdf");
    // A file created without a folder is in the root.
    let top = app.upload("report.pdf", b"top", None).await;
    assert_eq!(top.parent_id, FolderId::root());
    assert_eq!(
        names(&all_children(&app, docs_id, 10).await),
        [
            "file:report (1).pdf",
            "file:report (2).pdf",
            "file:report.pdf"
        ]
    );
    let listed: HashSet<String> = app
        .list_files()
        .await
        .files
        .into_iter()
        .map(|f| f.file_id.to_string())
        .collect();
    for f in [&first, &second, &third, &top] {
        assert!(listed.contains(f.file_id.as_str()));
    }
    assert_eq!(listed.len(), 4);
    // Bad on_conflict values and parents.
    for body in [
        json!({"name": "x", "size": 1, "on_conflict": "overwrite"}),
        json!({"name": "x", "size": 1, "parent_id": "folder"}),
    ] {
        create_upload(&app, body)
            .await
            .expect_error(400, "invalid_request");
    }
    // `replace` is accepted.
    let replace: CreateUploadResponse = create_upload(
        &app,
        json!({"name": "fresh.bin", "size": 1, "on_conflict": "replace"}),
    )
    .await
    .expect_body(201);
    send_all(&app, &replace, b"f").await;
    app.complete(&replace.upload_id).await;
}

/// With `fail`, a name taken after create is refused at complete too, and the upload stays
/// active: once the name is free again, the same upload completes.
#[tokio::test]
async fn fail_is_checked_at_create_and_again_at_complete() {
    let app = TestApp::new().await;
    let upload: CreateUploadResponse = create_upload(
        &app,
        json!({"name": "a.txt", "size": 3, "on_conflict": "fail"}),
    )
    .await
    .expect_body(201);
    send_all(&app, &upload, b"abc").await;
    let other = app.upload("a.txt", b"other", None).await;
    let complete_path = path(CompleteUpload, &upload.upload_id);
    let complete = || app.post(&complete_path, json!({}));
    complete().await.expect_error(409, "name_taken");
    let status: UploadView = app
        .get(&path(UploadStatus, &upload.upload_id))
        .await
        .expect_body(200);
    assert_eq!(status.state, UploadState::Active);
    // Twice: the parts are joined by now, and it still answers the same.
    complete().await.expect_error(409, "name_taken");
    app.patch(&path(RenameFile, &other.file_id), json!({"name": "b.txt"}))
        .await
        .expect(200);
    let file = complete().await.expect_body::<FileEnvelope>(201).file;
    assert_eq!(file.name, "a.txt");
    assert_eq!(app.download(&file.file_id).await, b"abc");
    assert_eq!(app.me().await.file_count, 2);
}

/// An upload whose folder was trashed before complete answers `409 parent_gone` and stays
/// active; when the folder is back, it completes.
#[tokio::test]
async fn complete_into_a_trashed_folder_is_parent_gone_and_the_upload_stays() {
    let app = TestApp::new().await;
    let docs = folder(&app, "docs", "root").await;
    let inner = folder(&app, "inner", docs.folder_id.as_str()).await;
    let upload: CreateUploadResponse = create_upload(
        &app,
        json!({"name": "a.txt", "size": 3, "parent_id": inner.folder_id}),
    )
    .await
    .expect_body(201);
    send_all(&app, &upload, b"abc").await;
    // The folder above it is trashed: the parent is no longer live either.
    mark_trashed(&app, &docs.folder_id, true).await;
    let complete_path = path(CompleteUpload, &upload.upload_id);
    let complete = || app.post(&complete_path, json!({}));
    complete().await.expect_error(409, "parent_gone");
    let status: UploadView = app
        .get(&path(UploadStatus, &upload.upload_id))
        .await
        .expect_body(200);
    assert_eq!(status.state, UploadState::Active);
    // A trashed folder is no parent for new things, and not found itself.
    mkdir(&app, "x", inner.folder_id.as_str())
        .await
        .expect_error(404, "not_found");
    app.get(&path(GetFolder, &docs.folder_id))
        .await
        .expect_error(404, "not_found");
    at_path(&app, "/docs").await.expect_error(404, "not_found");
    mark_trashed(&app, &docs.folder_id, false).await;
    let file = complete().await.expect_body::<FileEnvelope>(201).file;
    assert_eq!(file.parent_id, inner.folder_id);
    assert_eq!(app.me().await.file_count, 1);
}

/// Instant upload takes `parent_id` and `on_conflict` too: into a folder, renamed on a taken
/// name, refused with `fail` at the challenge and again after the proof.
#[tokio::test]
async fn instant_uploads_go_into_their_folder_with_on_conflict() {
    let app = TestApp::new().await;
    let data = test_bytes(MIB + 10, 41);
    let original = app.upload("orig.bin", &data, None).await;
    app.verified(&original.file_id).await;
    let docs = folder(&app, "docs", "root").await;
    let instant = |body: Value| async {
        let challenge: ChallengeResponse = app.post("/v1/fast-upload", body).await.expect_body(200);
        app.post(
            &path(FastUploadProof, &challenge.challenge_id),
            json!({"proof": answer(&challenge, &data)}),
        )
        .await
    };
    let base = json!({"name": "orig.bin", "size": data.len(), "sha256": sha256_hex(&data)});
    let mut into_docs = base.clone();
    into_docs["parent_id"] = json!(docs.folder_id);
    let ProofResponse::Complete { file } = instant(into_docs).await.expect_body(201) else {
        panic!("not complete");
    };
    assert_eq!(
        (file.name.as_str(), &file.parent_id),
        ("orig.bin", &docs.folder_id)
    );
    let ProofResponse::Complete { file } = instant(base.clone()).await.expect_body(201) else {
        panic!("not complete");
    };
    assert_eq!(file.name, "orig (1).bin");
    let mut fail = base.clone();
    fail["on_conflict"] = json!("fail");
    app.post("/v1/fast-upload", fail.clone())
        .await
        .expect_error(409, "name_taken");
    // Free at the challenge, taken by the proof.
    let mut later = fail.clone();
    later["name"] = json!("later.bin");
    let challenge: ChallengeResponse = app.post("/v1/fast-upload", later).await.expect_body(200);
    app.upload("later.bin", b"first", None).await;
    app.post(
        &path(FastUploadProof, &challenge.challenge_id),
        json!({"proof": answer(&challenge, &data)}),
    )
    .await
    .expect_error(409, "name_taken");
    let mut nowhere = base;
    nowhere["parent_id"] = json!(uuid::Uuid::now_v7().to_string());
    app.post("/v1/fast-upload", nowhere)
        .await
        .expect_error(404, "not_found");
}

/// Folders and files are renamed and moved by id; paths follow, old paths are gone; a move
/// into itself or below itself is a cycle; the root cannot be renamed or moved.
#[tokio::test]
async fn folders_and_files_are_renamed_and_moved() {
    let app = TestApp::new().await;
    let a = folder(&app, "a", "root").await;
    let b = folder(&app, "b", "root").await;
    let a_id = a.folder_id.as_str();
    let inner = folder(&app, "inner", a_id).await;
    let file = file_in(&app, "f.txt", inner.folder_id.as_str(), b"f").await;

    // Rename.
    let renamed: FolderView = app
        .patch(&path(MoveFolder, a_id), json!({"name": "alpha"}))
        .await
        .expect_body(200);
    assert_eq!(renamed.name, "alpha");
    at_path(&app, "/a").await.expect_error(404, "not_found");
    let found: Entry = at_path(&app, "/alpha/inner/f.txt").await.expect_body(200);
    assert_eq!(file_place(&found), place_of(&file));
    // Move into b, with a new name at once.
    let moved: FolderView = app
        .patch(
            &path(MoveFolder, a_id),
            json!({"parent_id": b.folder_id, "name": "moved"}),
        )
        .await
        .expect_body(200);
    assert_eq!(moved.parent_id, Some(b.folder_id.clone()));
    let found: Entry = at_path(&app, "/b/moved/inner/f.txt").await.expect_body(200);
    assert_eq!(file_place(&found), place_of(&file));
    let crumbs: FolderResponse = app
        .get(&path(GetFolder, &inner.folder_id))
        .await
        .expect_body(200);
    let names: Vec<&str> = crumbs.ancestors.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["", "b", "moved"]);
    // The same place is no change.
    app.patch(&path(MoveFolder, a_id), json!({"name": "moved"}))
        .await
        .expect(200);

    // Cycles.
    for target in [a_id, inner.folder_id.as_str()] {
        app.patch(&path(MoveFolder, a_id), json!({"parent_id": target}))
            .await
            .expect_error(409, "cycle");
    }
    // A taken name in the target.
    folder(&app, "taken", "root").await;
    app.patch(
        &path(MoveFolder, a_id),
        json!({"parent_id": "root", "name": "taken"}),
    )
    .await
    .expect_error(409, "name_taken");
    // The root.
    for body in [json!({"name": "x"}), json!({"parent_id": b.folder_id})] {
        app.patch(&path(MoveFolder, "root"), body)
            .await
            .expect_error(400, "root_folder");
    }
    // Bad bodies and unknown folders.
    for body in [
        json!({}),
        json!({"name": "x", "size": 1}),
        json!({"name": "a/b"}),
    ] {
        app.patch(&path(MoveFolder, a_id), body)
            .await
            .expect_error(400, "invalid_request");
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    app.patch(&path(MoveFolder, &unknown), json!({"name": "x"}))
        .await
        .expect_error(404, "not_found");
    app.patch(&path(MoveFolder, a_id), json!({"parent_id": unknown}))
        .await
        .expect_error(404, "not_found");

    // Files: move, rename, both; name taken; unknown target.
    let moved_file: FileView = app
        .patch(
            &path(RenameFile, &file.file_id),
            json!({"parent_id": "root"}),
        )
        .await
        .expect_body(200);
    assert_eq!(moved_file.parent_id, FolderId::root());
    assert_eq!(moved_file.name, "f.txt");
    at_path(&app, "/f.txt").await.expect(200);
    at_path(&app, "/b/moved/inner/f.txt")
        .await
        .expect_error(404, "not_found");
    app.patch(&path(RenameFile, &file.file_id), json!({"name": "taken"}))
        .await
        .expect_error(409, "name_taken");
    let both: FileView = app
        .patch(
            &path(RenameFile, &file.file_id),
            json!({"parent_id": b.folder_id, "name": "g.txt"}),
        )
        .await
        .expect_body(200);
    assert_eq!(
        (both.name.as_str(), &both.parent_id),
        ("g.txt", &b.folder_id)
    );
    assert_eq!(place_of(&app.file(&file.file_id).await), place_of(&both));
    app.patch(&path(RenameFile, &file.file_id), json!({}))
        .await
        .expect_error(400, "invalid_request");
    app.patch(
        &path(RenameFile, &file.file_id),
        json!({"parent_id": unknown}),
    )
    .await
    .expect_error(404, "not_found");
    // Its old name is free again, and the new one is held.
    file_in(&app, "f.txt", "root", b"again").await;
    assert_eq!(
        file_in(&app, "g.txt", b.folder_id.as_str(), b"g")
            .await
            .name,
        "g (1).txt"
    );
}

/// Paths resolve to files and folders from the root; what is not there is a 404 and what is
/// not a path a 400.
#[tokio::test]
async fn paths_resolve_to_files_and_folders() {
    let app = TestApp::new().await;
    let docs = folder(&app, "docs", "root").await;
    let deep = folder(&app, "deep é", docs.folder_id.as_str()).await;
    let file = file_in(&app, "a b.txt", deep.folder_id.as_str(), b"x").await;
    let root: Entry = at_path(&app, "/").await.expect_body(200);
    let Entry::Folder(root) = root else {
        panic!("the root is a folder")
    };
    assert_eq!(root.folder_id, FolderId::root());
    let raw = at_path(&app, "/docs").await.expect(200);
    assert_eq!(raw["type"], "folder");
    assert_eq!(
        at_path(&app, "/docs/").await.expect_body::<Entry>(200),
        Entry::Folder(docs.clone())
    );
    assert_eq!(
        file_place(
            &at_path(&app, "/docs/deep e\u{301}/a b.txt")
                .await
                .expect_body::<Entry>(200)
        ),
        place_of(&file)
    );
    let raw = at_path(&app, "/docs/deep é/a b.txt").await.expect(200);
    assert_eq!(raw["type"], "file");
    for missing in ["/nope", "/docs/nope", "/docs/deep é/a b.txt/x", "/a b.txt"] {
        at_path(&app, missing).await.expect_error(404, "not_found");
    }
    for bad in ["docs", "//", "/docs//x", "/docs/.."] {
        at_path(&app, bad).await.expect_error(400, "invalid_path");
    }
    app.get("/v1/paths").await.expect_error(400, "invalid_path");
}

/// Another user's folders are not found anywhere: as a parent, to read, list, move or move
/// into, and their paths resolve in the caller's own tree only.
#[tokio::test]
async fn other_users_folders_are_404_everywhere() {
    let owner = TestApp::new().await;
    let mallory = TestApp::new().await;
    let secret = folder(&owner, "secret", "root").await;
    let id = secret.folder_id.as_str();
    mkdir(&mallory, "x", id)
        .await
        .expect_error(404, "not_found");
    create_upload(&mallory, json!({"name": "x", "size": 1, "parent_id": id}))
        .await
        .expect_error(404, "not_found");
    mallory
        .post(
            "/v1/fast-upload",
            json!({"name": "x", "size": 1, "sha256": sha256_hex(b"x"), "parent_id": id}),
        )
        .await
        .expect_error(404, "not_found");
    mallory
        .get(&path(GetFolder, id))
        .await
        .expect_error(404, "not_found");
    children_page(&mallory, id, "")
        .await
        .expect_error(404, "not_found");
    mallory
        .patch(&path(MoveFolder, id), json!({"name": "mine"}))
        .await
        .expect_error(404, "not_found");
    let own = folder(&mallory, "own", "root").await;
    mallory
        .patch(&path(MoveFolder, &own.folder_id), json!({"parent_id": id}))
        .await
        .expect_error(404, "not_found");
    let file = mallory.upload("f", b"f", None).await;
    mallory
        .patch(&path(RenameFile, &file.file_id), json!({"parent_id": id}))
        .await
        .expect_error(404, "not_found");
    at_path(&mallory, "/secret")
        .await
        .expect_error(404, "not_found");
    // And the owner's tree is as it was.
    let read: FolderResponse = owner.get(&path(GetFolder, id)).await.expect_body(200);
    assert_eq!(read.folder, secret);
    assert!(all_children(&owner, id, 10).await.is_empty());
}

/// Folders nest at most 64 deep: the 65th level is `422 too_deep`, whether created there or
/// moved there with its subfolders.
#[tokio::test]
async fn folders_nest_at_most_64_deep() {
    let app = TestApp::new().await;
    let mut parent = FolderId::root();
    for level in 1..=64 {
        parent = folder(&app, &format!("l{level}"), parent.as_str())
            .await
            .folder_id;
    }
    mkdir(&app, "l65", parent.as_str())
        .await
        .expect_error(422, "too_deep");
    let crumbs: FolderResponse = app.get(&path(GetFolder, &parent)).await.expect_body(200);
    assert_eq!(crumbs.ancestors.len(), 64);
    // A folder with a subfolder, moved under level 63, would put the subfolder at 65.
    let two = folder(&app, "two", "root").await;
    folder(&app, "sub", two.folder_id.as_str()).await;
    let level63 = crumbs.ancestors[63].folder_id.clone();
    app.patch(
        &path(MoveFolder, &two.folder_id),
        json!({"parent_id": level63}),
    )
    .await
    .expect_error(422, "too_deep");
    // Under level 62 it fits exactly.
    let level62 = crumbs.ancestors[62].folder_id.clone();
    app.patch(
        &path(MoveFolder, &two.folder_id),
        json!({"parent_id": level62}),
    )
    .await
    .expect(200);
}

const TRIALS: usize = 15;

/// Two clients create the same name in one folder at the same moment, as folders and as a
/// folder against a file's complete: exactly one wins every time, the other is told
/// `name_taken`, and the folder holds the name once.
#[tokio::test]
async fn two_clients_creating_one_name_get_exactly_one_201() {
    let app = TestApp::new().await;
    for trial in 0..TRIALS {
        let name = format!("same {trial}");
        let (x, y) = tokio::join!(mkdir(&app, &name, "root"), mkdir(&app, &name, "root"));
        let mut statuses = [x.status.as_u16(), y.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "trial {trial}");
        for r in [&x, &y] {
            if r.status == 409 {
                r.expect_error(409, "name_taken");
            }
        }
        // A folder against a file of that name with on_conflict fail.
        let name = format!("mixed {trial}");
        let upload: CreateUploadResponse = create_upload(
            &app,
            json!({"name": name, "size": 1, "on_conflict": "fail"}),
        )
        .await
        .expect_body(201);
        send_all(&app, &upload, b"m").await;
        let complete_path = path(CompleteUpload, &upload.upload_id);
        let (made, completed) = tokio::join!(
            mkdir(&app, &name, "root"),
            app.post(&complete_path, json!({}))
        );
        let mut statuses = [made.status.as_u16(), completed.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "trial {trial}");
    }
    let entries = all_children(&app, "root", 1000).await;
    let unique: HashSet<String> = entries
        .iter()
        .map(|e| match e {
            Entry::File(f) => f.name.clone(),
            Entry::Folder(f) => f.name.clone(),
        })
        .collect();
    assert_eq!(unique.len(), entries.len());
    assert_eq!(entries.len(), 2 * TRIALS);
}

/// "Move A into B" and "move B into A" sent at the same moment: never both succeed, the loser
/// is told `cycle`, and afterwards both folders still read back with a finite chain to the
/// root, one inside the other.
#[tokio::test]
async fn crossed_moves_never_both_succeed() {
    let app = TestApp::new().await;
    for trial in 0..TRIALS {
        let a = folder(&app, &format!("a{trial}"), "root").await;
        let b = folder(&app, &format!("b{trial}"), "root").await;
        let (a_path, b_path) = (
            path(MoveFolder, &a.folder_id),
            path(MoveFolder, &b.folder_id),
        );
        let (ab, ba) = tokio::join!(
            app.patch(&a_path, json!({"parent_id": b.folder_id})),
            app.patch(&b_path, json!({"parent_id": a.folder_id})),
        );
        let mut statuses = [ab.status.as_u16(), ba.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "trial {trial}");
        for r in [&ab, &ba] {
            if r.status == 409 {
                r.expect_error(409, "cycle");
            }
        }
        let read_a: FolderResponse = app
            .get(&path(GetFolder, &a.folder_id))
            .await
            .expect_body(200);
        let read_b: FolderResponse = app
            .get(&path(GetFolder, &b.folder_id))
            .await
            .expect_body(200);
        let depths = [read_a.ancestors.len(), read_b.ancestors.len()];
        assert!(
            depths == [1, 2] || depths == [2, 1],
            "trial {trial}: {depths:?}"
        );
    }
}

/// How deep a folder is (the root not counted), walked up its parents in the table: the
/// API reads no chain past the limit.
async fn depth_in_table(app: &TestApp, folder: &FolderId) -> usize {
    let (_, ddb) = aws().await;
    let (mut depth, mut next) = (0, folder.clone());
    while !next.is_root() {
        let item = ddb
            .get_item()
            .table_name(&system().table)
            .key("PK", AttributeValue::S(keys::user_pk(&app.user_id)))
            .key("SK", AttributeValue::S(keys::folder_sk(&next)))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("a folder on the chain");
        next = FolderId::parse(item["parent_id"].as_s().unwrap()).unwrap();
        depth += 1;
        assert!(depth <= 2 * 64, "a loop of parents");
    }
    depth
}

/// A chain of `levels` folders under `parent`, the first named `name`: its ids, top first.
async fn chain_of(app: &TestApp, name: &str, parent: &str, levels: usize) -> Vec<FolderId> {
    let mut ids = vec![folder(app, name, parent).await.folder_id];
    for level in 2..=levels {
        let parent = ids.last().unwrap().to_string();
        ids.push(
            folder(app, &format!("{name}{level}"), &parent)
                .await
                .folder_id,
        );
    }
    ids
}

/// Two moves that each fit the 64-deep limit alone but not together, sent at the same
/// moment: `x` (32 levels tall) under a folder 32 deep, and `w` (45 levels tall) into `x`.
/// Whichever commits first deepens what the other measured (the target's chain, or the
/// moved subtree), so the other must be refused with `422 too_deep`; counted are the trials
/// whose tree ends deeper than 64. Each move measures the other's work while it reads, which
/// is the window a move conditioned only on its target's chain lets through.
#[tokio::test]
async fn concurrent_moves_never_pass_the_depth_limit() {
    let app = TestApp::new().await;
    let target = chain_of(&app, "t", "root", 32).await;
    let x = chain_of(&app, "x", "root", 32).await;
    let w = chain_of(&app, "w", "root", 45).await;
    let (x_path, w_path) = (path(MoveFolder, &x[0]), path(MoveFolder, &w[0]));
    let mut too_deep = Vec::new();
    for trial in 0..TRIALS {
        let (into_target, into_x) = tokio::join!(
            app.patch(&x_path, json!({"parent_id": target[31]})),
            app.patch(&w_path, json!({"parent_id": x[0]})),
        );
        for r in [&into_target, &into_x] {
            if r.status != 200 {
                r.expect_error(422, "too_deep");
            }
        }
        assert!(
            into_target.status == 200 || into_x.status == 200,
            "trial {trial}: neither move went through"
        );
        let depth = depth_in_table(&app, &w[44]).await;
        if depth > 64 {
            too_deep.push((trial, depth));
        }
        for (moved, to_root) in [(into_target, &x_path), (into_x, &w_path)] {
            if moved.status == 200 {
                app.patch(to_root, json!({"parent_id": "root"}))
                    .await
                    .expect(200);
            }
        }
    }
    assert!(too_deep.is_empty(), "trials deeper than 64: {too_deep:?}");
}

/// A restore and a move that each fit the 64-deep limit alone but not together, sent at
/// the same moment: `r` (40 levels tall, in the trash) restored into `p` (2 deep, below
/// `a`), and `a` moved under a folder 30 deep. Whichever commits first deepens what the
/// other measured, so the other must be refused with `422 too_deep`; counted are the
/// trials whose tree ends deeper than 64.
#[tokio::test]
async fn a_restore_and_a_move_never_pass_the_depth_limit_together() {
    let app = TestApp::new().await;
    let deep = chain_of(&app, "q", "root", 30).await;
    let a = chain_of(&app, "a", "root", 2).await;
    let r = chain_of(&app, "r", "root", 40).await;
    let (a_path, r_path) = (path(MoveFolder, &a[0]), path(DeleteFolder, &r[0]));
    let restore_path = path(RestoreTrash, &r[0]);
    let mut too_deep = Vec::new();
    for trial in 0..TRIALS {
        app.delete(&r_path).await.expect(204);
        let (restored, moved) = tokio::join!(
            app.post(
                &restore_path,
                json!({"parent_id": a[1], "name": format!("r {trial}")})
            ),
            app.patch(&a_path, json!({"parent_id": deep[29]})),
        );
        for resp in [&restored, &moved] {
            if resp.status != 200 {
                resp.expect_error(422, "too_deep");
            }
        }
        assert!(
            restored.status == 200 || moved.status == 200,
            "trial {trial}: neither went through"
        );
        let depth = depth_in_table(&app, &r[39]).await;
        if restored.status == 200 && depth > 64 {
            too_deep.push((trial, depth));
        }
        if moved.status == 200 {
            app.patch(&a_path, json!({"parent_id": "root"}))
                .await
                .expect(200);
        }
        if restored.status != 200 {
            app.post(&restore_path, json!({"parent_id": "root"}))
                .await
                .expect(200);
        }
    }
    assert!(too_deep.is_empty(), "trials deeper than 64: {too_deep:?}");
}

/// How deep a folder is (the root not counted), from its breadcrumbs: the API walks up its
/// chain of parents.
async fn depth_of(app: &TestApp, folder: &FolderId) -> usize {
    let read: FolderResponse = app.get(&path(GetFolder, folder)).await.expect_body(200);
    read.ancestors.len()
}

/// A move that leaves the tree exactly 64 deep, sent at the same moment as three creates of
/// a folder at its bottom: each fits alone, but a create and the move together put a folder
/// at 65. `x` is 62 folders in a chain with 40 leaves below its last (63 deep, `b00` first
/// by name), moved under a folder 1 deep; the creates go into `b00`. A create commits
/// bumping the `subtree_version` of every folder above it, `x` included, which the move is
/// conditioned on as it read it before measuring `x`'s height; the move commits changing
/// `x`'s parent, which each create's chain is conditioned on. So whichever commits second
/// reads again and is refused with `422 too_deep`. The move measures level by level, `b00`
/// first of the last level and 39 more leaves after it, so a create committing once `b00`
/// was measured, before the move commits, is what only the version condition refuses; the
/// creates start after a head start for the move that varies by trial, so they commit
/// before, within and after that window.
/// Counted are the trials that leave a folder deeper than 64, read through the API: only the
/// folders created can be (the leaves are 64 deep after the move; `b00` is read too).
#[tokio::test]
async fn a_move_and_creates_below_it_never_pass_the_depth_limit() {
    let app = TestApp::new().await;
    let target = folder(&app, "t", "root").await.folder_id;
    let x = chain_of(&app, "x", "root", 62).await;
    let mut leaves = Vec::new();
    for i in 0..40 {
        leaves.push(
            folder(&app, &format!("b{i:02}"), x[61].as_str())
                .await
                .folder_id,
        );
    }
    let (x_path, bottom) = (path(MoveFolder, &x[0]), leaves[0].to_string());
    let mut too_deep = Vec::new();
    for trial in 0..TRIALS {
        // The move's head start, varied by trial: each create first reads the breadcrumbs of
        // a folder 1 to 62 deep, a read per level.
        let head_start = &x[(trial * 9) % 62];
        let create = |i: usize| {
            let (app, bottom) = (&app, &bottom);
            async move {
                depth_of(app, head_start).await;
                mkdir(app, &format!("c{trial}-{i}"), bottom).await
            }
        };
        let (moved, c0, c1, c2) = tokio::join!(
            app.patch(&x_path, json!({"parent_id": target})),
            create(0),
            create(1),
            create(2),
        );
        if moved.status != 200 {
            moved.expect_error(422, "too_deep");
        }
        let mut created = Vec::new();
        for c in [c0, c1, c2] {
            match c.status.as_u16() {
                201 => created.push(c.expect_body::<FolderView>(201).folder_id),
                _ => c.expect_error(422, "too_deep"),
            }
        }
        assert!(
            moved.status == 200 || !created.is_empty(),
            "trial {trial}: neither the move nor a create went through"
        );
        for folder in created.iter().chain([&leaves[0]]) {
            let depth = depth_of(&app, folder).await;
            if depth > 64 {
                too_deep.push((trial, depth));
            }
        }
        // Back as it was: `x` at the root (first, so nothing is too deep to delete), 63 tall.
        if moved.status == 200 {
            app.patch(&x_path, json!({"parent_id": "root"}))
                .await
                .expect(200);
        }
        for folder in &created {
            app.delete(&path(DeleteFolder, folder)).await.expect(204);
        }
    }
    assert!(too_deep.is_empty(), "trials deeper than 64: {too_deep:?}");
}

/// Two folders renamed to one name at the same moment: one succeeds, the other is told
/// `name_taken`, and the name is held once.
#[tokio::test]
async fn concurrent_renames_to_one_name_give_it_to_one() {
    let app = TestApp::new().await;
    for trial in 0..TRIALS {
        let x = folder(&app, &format!("x{trial}"), "root").await;
        let y = file_in(&app, &format!("y{trial}"), "root", b"y").await;
        let name = format!("target {trial}");
        let (x_path, y_path) = (path(MoveFolder, &x.folder_id), path(RenameFile, &y.file_id));
        let (rx, ry) = tokio::join!(
            app.patch(&x_path, json!({"name": name})),
            app.patch(&y_path, json!({"name": name})),
        );
        let mut statuses = [rx.status.as_u16(), ry.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "trial {trial}");
        let held = at_path(&app, &format!("/{name}")).await.expect(200);
        let winner = if rx.status == 200 { "folder" } else { "file" };
        assert_eq!(held["type"], winner);
    }
    // Every file is still listed by GET /v1/files, under whichever name it kept.
    let files = app.list_files().await.files;
    assert_eq!(files.len(), TRIALS);
    for f in files {
        app.get(&path(GetFile, &f.file_id)).await.expect(200);
    }
}

/// A trashed file gives up its name in its folder and is restored back into it: `409
/// name_taken` when the name was taken meanwhile (a new name fixes it), `409 parent_gone`
/// when its folder is in the trash (another `parent_id` fixes it).
#[tokio::test]
async fn trash_frees_the_name_and_restore_claims_it_in_the_folder() {
    let app = TestApp::new().await;
    let docs = folder(&app, "docs", "root").await;
    let docs_id = docs.folder_id.as_str();
    let old = file_in(&app, "a.txt", docs_id, b"old").await;
    app.delete(&path(DeleteFile, &old.file_id))
        .await
        .expect(204);
    at_path(&app, "/docs/a.txt")
        .await
        .expect_error(404, "not_found");
    assert!(all_children(&app, docs_id, 10).await.is_empty());
    let new = file_in(&app, "a.txt", docs_id, b"new").await;
    assert_eq!(new.name, "a.txt");
    let restore_path = path(RestoreTrash, &old.file_id);
    let restore = |body: Value| app.post(&restore_path, body);
    restore(json!({})).await.expect_error(409, "name_taken");
    let back: Entry = restore(json!({"name": "a (old).txt"}))
        .await
        .expect_body(200);
    assert_eq!(
        file_place(&back),
        (
            old.file_id.to_string(),
            "a (old).txt".into(),
            docs.folder_id.clone()
        )
    );
    assert_eq!(
        names(&all_children(&app, docs_id, 10).await),
        ["file:a (old).txt", "file:a.txt"]
    );
    // Its folder in the trash: back to the root instead.
    app.delete(&path(DeleteFile, &old.file_id))
        .await
        .expect(204);
    mark_trashed(&app, &docs.folder_id, true).await;
    restore(json!({})).await.expect_error(409, "parent_gone");
    restore(json!({"parent_id": docs.folder_id}))
        .await
        .expect_error(404, "not_found");
    let back: Entry = restore(json!({"parent_id": "root"})).await.expect_body(200);
    assert_eq!(file_place(&back).2, FolderId::root());
    at_path(&app, "/a (old).txt").await.expect(200);
}

/// `replace` puts the file holding the name in the trash and takes its place, at complete
/// and at a proof; a folder's name is not replaced (`409 name_taken` at create).
#[tokio::test]
async fn replace_trashes_the_file_holding_the_name() {
    let app = TestApp::new().await;
    let docs = folder(&app, "docs", "root").await;
    let docs_id = docs.folder_id.as_str();
    let old = file_in(&app, "r.txt", docs_id, b"old").await;
    let new = upload_into(&app, "r.txt", docs_id, Some("replace"), b"new!")
        .await
        .expect_body::<FileEnvelope>(201)
        .file;
    assert_eq!(
        (new.name.as_str(), &new.parent_id),
        ("r.txt", &docs.folder_id)
    );
    app.get(&path(GetFile, &old.file_id))
        .await
        .expect_error(404, "not_found");
    let trash = app.trash().await;
    assert_eq!(trash.entries.len(), 1);
    assert_eq!(trash.entries[0].id, old.file_id.to_string());
    assert_eq!(
        trash.entries[0].original_parent_id,
        docs.folder_id.to_string()
    );
    let found: Entry = at_path(&app, "/docs/r.txt").await.expect_body(200);
    assert_eq!(file_place(&found), place_of(&new));
    // No file holds the name: replace simply creates.
    let fresh = upload_into(&app, "s.txt", docs_id, Some("replace"), b"s")
        .await
        .expect_body::<FileEnvelope>(201)
        .file;
    assert_eq!(fresh.name, "s.txt");
    // A folder's name is not a file to replace.
    create_upload(
        &app,
        json!({"name": "docs", "size": 1, "on_conflict": "replace"}),
    )
    .await
    .expect_error(409, "name_taken");
}
