//! Folders in the trash: a trashed folder takes everything below it out of reach (every
//! route a 404, absent from listings and paths, share links dead) while its bytes stay
//! counted; restore brings the whole subtree back (where it was, elsewhere, renamed), purge
//! frees it exactly once, page by page, and a purge stopped halfway is finished by the
//! janitor. Races as races: restore against purge.

use std::collections::HashSet;

use filestore_contract::RouteKey::{
    CompleteUpload, CreateShare, DeleteFile, DeleteFolder, DownloadFile, GetFile, GetFolder,
    ListChildren, ListShares, MoveFolder, PurgeTrash, RenameFile, RestoreTrash, UploadStatus,
};
use filestore_contract::api::{CreateShareResponse, CreateUploadResponse, Entry, EntryList};
use filestore_contract::domain::{EntryType, FileId, FolderId, OnConflict};
use filestore_dev::{LocalSystem, Options};
use filestore_shared::keys;
use filestore_shared::purge::Budget;
use filestore_shared::repo::{AddFile, Copies, FileRecord, Verified, VerifyOutcome};
use filestore_transfer::{CopyJob, Place, Progress};
use futures::StreamExt;
use serde_json::json;
use time::OffsetDateTime;

use crate::helpers::{
    TestApp, file_in_folder, http_client, new_folder, path, sha256_hex, test_bytes,
};

/// Trials per race: enough for every interleaving the two sides can take to come up.
const TRIALS: usize = 30;

/// Usage as `GET /v1/me` shows it: (used_bytes, file_count, trash_bytes).
async fn usage(app: &TestApp) -> (u64, u64, u64) {
    let me = app.me().await;
    (me.used_bytes, me.file_count, me.trash_bytes)
}

/// The ids `GET /v1/files` lists.
async fn listed(app: &TestApp) -> HashSet<String> {
    app.get("/v1/files?limit=1000")
        .await
        .expect_body::<filestore_contract::api::FileList>(200)
        .files
        .into_iter()
        .map(|f| f.file_id.to_string())
        .collect()
}

/// The names a folder lists.
async fn children(app: &TestApp, folder: &str) -> Vec<String> {
    app.get(&path(ListChildren, folder))
        .await
        .expect_body::<EntryList>(200)
        .entries
        .into_iter()
        .map(|e| match e {
            Entry::File(f) => f.name,
            Entry::Folder(f) => f.name,
        })
        .collect()
}

/// Opens a share link anonymously: its status.
async fn open(url: &str) -> u16 {
    http_client()
        .get(url)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A trashed folder: everything below it is a 404 on every route and absent from the
/// listings and paths, share links count nothing, and `trash_bytes` holds the subtree's bytes
/// while `used_bytes` keeps them. The trash lists it as a folder; restored, the subtree is
/// back whole, links included.
#[tokio::test]
async fn a_trashed_folder_takes_its_subtree_away_until_restored_whole() {
    let app = TestApp::new().await;
    let keep = app.upload("keep.txt", b"keep", None).await;
    let a = new_folder(&app, "a", "root").await;
    let b = new_folder(&app, "b", a.folder_id.as_str()).await;
    let (a_id, b_id) = (a.folder_id.as_str(), b.folder_id.as_str());
    let in_a = file_in_folder(&app, "in-a.bin", a_id, &test_bytes(1000, 9101)).await;
    let in_b = file_in_folder(&app, "in-b.bin", b_id, &test_bytes(2000, 9102)).await;
    let link: CreateShareResponse = app
        .post(
            &path(CreateShare, &in_b.file_id),
            json!({"expires_in": 3600}),
        )
        .await
        .expect_body(201);
    assert_eq!(usage(&app).await, (3004, 3, 0));

    app.delete(&path(DeleteFolder, a_id)).await.expect(204);
    assert_eq!(usage(&app).await, (3004, 3, 3000));
    for file in [&in_a, &in_b] {
        let id = file.file_id.as_str();
        for p in [
            path(GetFile, id),
            path(DownloadFile, id),
            path(ListShares, id),
        ] {
            app.get(&p).await.expect_error(404, "not_found");
        }
        app.patch(&path(RenameFile, id), json!({"name": "x"}))
            .await
            .expect_error(404, "not_found");
        app.patch(&path(RenameFile, id), json!({"parent_id": "root"}))
            .await
            .expect_error(404, "not_found");
        app.post(&path(CreateShare, id), json!({"expires_in": 60}))
            .await
            .expect_error(404, "not_found");
        app.delete(&path(DeleteFile, id))
            .await
            .expect_error(404, "not_found");
    }
    for _ in 0..2 {
        assert_eq!(open(&link.url).await, 404);
    }
    for id in [a_id, b_id] {
        app.get(&path(GetFolder, id))
            .await
            .expect_error(404, "not_found");
        app.get(&path(ListChildren, id))
            .await
            .expect_error(404, "not_found");
        app.patch(&path(MoveFolder, id), json!({"name": "z"}))
            .await
            .expect_error(404, "not_found");
        app.delete(&path(DeleteFolder, id))
            .await
            .expect_error(404, "not_found");
        // Nothing goes into them.
        app.post("/v1/folders", json!({"name": "new", "parent_id": id}))
            .await
            .expect_error(404, "not_found");
        app.post(
            "/v1/uploads",
            json!({"name": "n.bin", "size": 3, "parent_id": id}),
        )
        .await
        .expect_error(404, "not_found");
        app.post(
            "/v1/fast-upload",
            json!({"name": "n.bin", "size": 3, "sha256": sha256_hex(b"abc"), "parent_id": id}),
        )
        .await
        .expect_error(404, "not_found");
        app.patch(&path(RenameFile, &keep.file_id), json!({"parent_id": id}))
            .await
            .expect_error(404, "not_found");
    }
    assert_eq!(
        listed(&app).await,
        HashSet::from([keep.file_id.to_string()])
    );
    assert_eq!(children(&app, "root").await, ["keep.txt"]);
    for p in ["/a", "/a/b", "/a/in-a.bin", "/a/b/in-b.bin"] {
        app.get(&format!("/v1/paths?path={p}"))
            .await
            .expect_error(404, "not_found");
    }
    // Its name is free again.
    let other_a = new_folder(&app, "a", "root").await;

    let trash = app.trash().await;
    let [entry] = trash.entries.as_slice() else {
        panic!("one entry: {trash:?}");
    };
    assert_eq!(entry.entry_type, EntryType::Folder);
    assert_eq!(
        (entry.id.as_str(), entry.name.as_str(), entry.size),
        (a_id, "a", 3000)
    );
    assert_eq!(entry.original_parent_id, "root");
    let raw = app.get("/v1/trash").await.expect(200);
    assert_eq!(raw["entries"][0]["type"], "folder");

    // Back under another name, since "a" is taken now; everything below it with it.
    app.post(&path(RestoreTrash, a_id), json!({}))
        .await
        .expect_error(409, "name_taken");
    let raw = app
        .post(&path(RestoreTrash, a_id), json!({"name": "a2"}))
        .await
        .expect(200);
    assert_eq!(raw["type"], "folder");
    assert_eq!(raw["name"], "a2");
    assert_eq!(raw["parent_id"], "root");
    assert_eq!(usage(&app).await, (3004, 3, 0));
    assert!(app.trash().await.entries.is_empty());
    assert_eq!(app.download(&in_b.file_id).await, test_bytes(2000, 9102));
    assert_eq!(app.file(&in_a.file_id).await.name, "in-a.bin");
    assert_eq!(listed(&app).await.len(), 3);
    assert_eq!(children(&app, "root").await, ["a", "a2", "keep.txt"]);
    assert_eq!(children(&app, a_id).await, ["b", "in-a.bin"]);
    app.get("/v1/paths?path=/a2/b/in-b.bin").await.expect(200);
    assert_eq!(open(&link.url).await, 302);
    let shares: filestore_contract::api::ShareList = app
        .get(&path(ListShares, &in_b.file_id))
        .await
        .expect_body(200);
    assert_eq!(
        shares.shares[0].downloads, 1,
        "the opens while trashed counted nothing"
    );
    app.delete(&path(DeleteFolder, other_a.folder_id.as_str()))
        .await
        .expect(204);
}

/// The root cannot be deleted (400 `root_folder`); unknown, malformed, another user's,
/// already trashed folders and folders below a trashed one are 404, and nothing of theirs
/// moves.
#[tokio::test]
async fn only_the_callers_live_folders_can_be_deleted() {
    let app = TestApp::new().await;
    let other = TestApp::new().await;
    app.delete(&path(DeleteFolder, "root"))
        .await
        .expect_error(400, "root_folder");
    let theirs = new_folder(&other, "theirs", "root").await;
    file_in_folder(&other, "t.bin", theirs.folder_id.as_str(), b"theirs").await;
    let a = new_folder(&app, "a", "root").await;
    let b = new_folder(&app, "b", a.folder_id.as_str()).await;
    for id in [
        FolderId::generate().to_string(),
        "not-an-id".to_string(),
        theirs.folder_id.to_string(),
    ] {
        app.delete(&path(DeleteFolder, &id))
            .await
            .expect_error(404, "not_found");
        app.post(&path(RestoreTrash, &id), json!({}))
            .await
            .expect_error(404, "not_found");
        app.delete(&path(PurgeTrash, &id))
            .await
            .expect_error(404, "not_found");
    }
    app.delete(&path(DeleteFolder, a.folder_id.as_str()))
        .await
        .expect(204);
    for id in [a.folder_id.as_str(), b.folder_id.as_str()] {
        app.delete(&path(DeleteFolder, id))
            .await
            .expect_error(404, "not_found");
    }
    // Only the folder trashed itself is in the trash, once.
    assert_eq!(app.trash().await.entries.len(), 1);
    // The other user sees and reaches none of it, and theirs is untouched.
    other
        .post(&path(RestoreTrash, a.folder_id.as_str()), json!({}))
        .await
        .expect_error(404, "not_found");
    other
        .delete(&path(PurgeTrash, a.folder_id.as_str()))
        .await
        .expect_error(404, "not_found");
    other.delete("/v1/trash").await.expect(204);
    assert!(other.trash().await.entries.is_empty());
    assert_eq!(app.trash().await.entries.len(), 1);
    other
        .get(&path(GetFolder, theirs.folder_id.as_str()))
        .await
        .expect(200);
    assert_eq!(usage(&other).await, (6, 1, 0));
}

/// Restore puts a folder back in its original parent (nested), in another one (`parent_id`),
/// under a new name; `409 parent_gone` when its parent is trashed (and no `parent_id` given),
/// `404` when a given `parent_id` is trashed; a file trashed on its own before its folder
/// keeps its own entry.
#[tokio::test]
async fn a_folder_restores_where_it_was_or_where_it_is_asked() {
    let app = TestApp::new().await;
    let top = new_folder(&app, "top", "root").await;
    let mid = new_folder(&app, "mid", top.folder_id.as_str()).await;
    let dest = new_folder(&app, "dest", "root").await;
    let (top_id, mid_id, dest_id) = (
        top.folder_id.as_str(),
        mid.folder_id.as_str(),
        dest.folder_id.as_str(),
    );
    let file = file_in_folder(&app, "f.txt", mid_id, b"12345").await;
    let alone = file_in_folder(&app, "alone.txt", mid_id, b"123").await;
    app.delete(&path(DeleteFile, &alone.file_id))
        .await
        .expect(204);

    // To its original parent.
    app.delete(&path(DeleteFolder, mid_id)).await.expect(204);
    assert_eq!(usage(&app).await, (8, 2, 8));
    let back: Entry = app
        .post(&path(RestoreTrash, mid_id), json!({}))
        .await
        .expect_body(200);
    let Entry::Folder(back) = back else {
        panic!("a folder")
    };
    assert_eq!(back.parent_id.as_ref().map(|p| p.as_str()), Some(top_id));
    assert_eq!(children(&app, top_id).await, ["mid"]);
    assert_eq!(app.file(&file.file_id).await.parent_id.as_str(), mid_id);

    // To another parent, under a new name.
    app.delete(&path(DeleteFolder, mid_id)).await.expect(204);
    app.post(
        &path(RestoreTrash, mid_id),
        json!({"parent_id": dest_id, "name": "moved"}),
    )
    .await
    .expect(200);
    assert_eq!(children(&app, dest_id).await, ["moved"]);
    assert!(children(&app, top_id).await.is_empty());
    app.get("/v1/paths?path=/dest/moved/f.txt")
        .await
        .expect(200);

    // Its parent trashed meanwhile: parent_gone, or 404 for a trashed parent_id given.
    app.delete(&path(DeleteFolder, mid_id)).await.expect(204);
    app.delete(&path(DeleteFolder, dest_id)).await.expect(204);
    app.post(&path(RestoreTrash, mid_id), json!({}))
        .await
        .expect_error(409, "parent_gone");
    app.post(&path(RestoreTrash, mid_id), json!({"parent_id": dest_id}))
        .await
        .expect_error(404, "not_found");
    app.post(&path(RestoreTrash, mid_id), json!({"parent_id": top_id}))
        .await
        .expect(200);
    app.get(&path(GetFile, &file.file_id)).await.expect(200);
    // The file trashed on its own is still in the trash, its folder live again.
    let alone_back: Entry = app
        .post(&path(RestoreTrash, &alone.file_id), json!({}))
        .await
        .expect_body(200);
    assert!(matches!(alone_back, Entry::File(f) if f.parent_id.as_str() == mid_id));
    app.delete(&path(PurgeTrash, dest_id)).await.expect(204);
    assert_eq!(usage(&app).await, (8, 2, 0));
}

/// Purging a folder frees its whole subtree as v1 deletes would: usage, the files' content
/// references and their objects; emptying the trash purges folders too.
#[tokio::test]
async fn purging_a_folder_frees_its_subtree_once() {
    let local = LocalSystem::start(Options::isolated()).await.unwrap();
    let state = &local.state;
    let app = TestApp::new_at(&local.base_url()).await;
    let keep = app.upload("keep.bin", &test_bytes(100, 9300), None).await;
    let mut hashes = Vec::new();
    let mut folders = Vec::new();
    for round in 0..2u64 {
        let f = new_folder(&app, &format!("f{round}"), "root").await;
        let sub = new_folder(&app, "sub", f.folder_id.as_str()).await;
        for (i, parent) in [f.folder_id.as_str(), sub.folder_id.as_str()]
            .iter()
            .enumerate()
        {
            let data = test_bytes(500, 9310 + round * 10 + i as u64);
            let file = file_in_folder(&app, "x.bin", parent, &data).await;
            app.verified(&file.file_id).await;
            hashes.push(sha256_hex(&data));
        }
        folders.push(f.folder_id.to_string());
    }
    let refs = |sha256: String| async move {
        state
            .repo
            .get_content(&sha256)
            .await
            .unwrap()
            .map_or(0, |c| c.refs)
    };
    for h in &hashes {
        assert_eq!(refs(h.clone()).await, 1);
    }
    for f in &folders {
        app.delete(&path(DeleteFolder, f)).await.expect(204);
    }
    assert_eq!(usage(&app).await, (2100, 5, 2000));
    app.delete(&path(PurgeTrash, &folders[0])).await.expect(204);
    assert_eq!(usage(&app).await, (1100, 3, 1000));
    app.delete(&path(PurgeTrash, &folders[0]))
        .await
        .expect_error(404, "not_found");
    app.post(&path(RestoreTrash, &folders[0]), json!({}))
        .await
        .expect_error(404, "not_found");
    app.delete("/v1/trash").await.expect(204);
    assert_eq!(usage(&app).await, (100, 1, 0));
    for h in &hashes {
        assert_eq!(refs(h.clone()).await, 0, "{h}");
    }
    assert_eq!(
        listed(&app).await,
        HashSet::from([keep.file_id.to_string()])
    );
    assert_eq!(children(&app, "root").await, ["keep.bin"]);
    let left = state
        .storage
        .list(&format!("files/{}/", app.user_id))
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "only keep.bin's object: {left:?}");
    local.stop().await;
}

/// A restore and a purge of one trashed folder at the same time: in every trial exactly one
/// wins (200 or 204, the other 404); usage, `trash_bytes` and the content references are
/// exactly what the winner leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_racing_purge_of_a_folder_has_exactly_one_winner() {
    let local = LocalSystem::start(Options::isolated()).await.unwrap();
    let state = &local.state;
    let app = TestApp::new_at(&local.base_url()).await;
    let (mut restored, mut purged) = (0u64, 0u64);
    let mut kept = 0u64;
    for trial in 0..TRIALS {
        let folder = new_folder(&app, &format!("r{trial}"), "root").await;
        let id = folder.folder_id.to_string();
        let data = test_bytes(100 + trial, 9400 + trial as u64);
        let file = file_in_folder(&app, "x.bin", &id, &data).await;
        app.verified(&file.file_id).await;
        app.delete(&path(DeleteFolder, &id)).await.expect(204);
        let (restore, purge) = (path(RestoreTrash, &id), path(PurgeTrash, &id));
        let (r, p) = tokio::join!(app.post(&restore, json!({})), app.delete(&purge));
        let refs = state
            .repo
            .get_content(&sha256_hex(&data))
            .await
            .unwrap()
            .map_or(0, |c| c.refs);
        match (r.status.as_u16(), p.status.as_u16()) {
            (200, 404) => {
                restored += 1;
                kept += data.len() as u64;
                assert_eq!(app.download(&file.file_id).await, data, "trial {trial}");
                assert_eq!(refs, 1, "trial {trial}");
            }
            (404, 204) => {
                purged += 1;
                app.get(&path(GetFile, &file.file_id))
                    .await
                    .expect_error(404, "not_found");
                assert_eq!(refs, 0, "trial {trial}");
            }
            other => panic!("trial {trial}: restore and purge answered {other:?}"),
        }
        assert_eq!(usage(&app).await, (kept, restored, 0), "trial {trial}");
    }
    assert!(app.trash().await.entries.is_empty());
    println!("restore won {restored}, purge won {purged} of {TRIALS}");
    local.stop().await;
}

/// A subtree of 1,000 files (three levels) purged a step budget at a time: the request's
/// purge stops early, a janitor run with a small budget goes on and stops again, and the
/// next sweep finishes it. After each, the counters and the content references match what is
/// left exactly; at the end nothing of the subtree is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_janitor_finishes_a_folder_purge_stopped_halfway() {
    const FILES: usize = 1000;
    const SIZE: usize = 64;
    let mut options = Options::isolated();
    // The test plays the transfer: one copy of the content, and every file verified on it.
    options.run_worker = false;
    let local = LocalSystem::start(options).await.unwrap();
    let state = &local.state;
    let app = TestApp::new_at(&local.base_url()).await;
    let top = new_folder(&app, "top", "root").await;
    let s1 = new_folder(&app, "s1", top.folder_id.as_str()).await;
    let s2 = new_folder(&app, "s2", s1.folder_id.as_str()).await;
    let parents = [
        top.folder_id.to_string(),
        s1.folder_id.to_string(),
        s2.folder_id.to_string(),
    ];
    // One content for all, so its reference count is the number of verified files on it.
    let data = test_bytes(SIZE, 9500);
    let sha256 = sha256_hex(&data);
    // One file uploaded and verified (the test plays the transfer), the others instant
    // uploads of its content, written as a correct proof writes them.
    let first = file_in_folder(&app, "f0.bin", &parents[0], &data).await;
    let cold_key = keys::cold_key(&first.file_id);
    let copied = CopyJob::new(
        Place {
            store: &state.storage,
            key: &keys::object_key(&app.user_id, &first.file_id),
        },
        Place {
            store: state.cold.as_ref().unwrap(),
            key: &cold_key,
        },
        SIZE as u64,
    )
    .run()
    .await
    .unwrap();
    let Progress::Done(copied) = copied else {
        panic!("a copy with no time limit finishes: {copied:?}");
    };
    let record = state
        .repo
        .get_file(&app.user_id, &first.file_id)
        .await
        .unwrap()
        .unwrap();
    let found = Verified {
        sha256: copied.sha256.clone(),
        sha1: copied.sha1.clone(),
        size: copied.size,
        cold_key: cold_key.clone(),
    };
    let verified = state.repo.record_verified(&record, &found).await.unwrap();
    assert_ne!(verified, VerifyOutcome::Stale);
    let started = std::time::Instant::now();
    futures::stream::iter(1..FILES)
        .for_each_concurrent(8, |i| {
            let (record, parents, cold_key, found) = (&record, &parents, &cold_key, &found);
            async move {
                let file_id = FileId::generate();
                let mut file = FileRecord {
                    file_id: file_id.clone(),
                    name: format!("f{i}.bin"),
                    parent_id: FolderId::parse(&parents[i % 3]).unwrap(),
                    object_key: keys::object_key(&record.user_id, &file_id),
                    upload_id: None,
                    copies: Copies::Verified {
                        sha1: found.sha1.clone(),
                        cold_key: cold_key.clone(),
                        hot_kept: false,
                    },
                    sha256: Some(found.sha256.clone()),
                    ..record.clone()
                };
                let added = state
                    .repo
                    .create_shared_file(&mut file, OnConflict::Fail, u64::MAX)
                    .await
                    .unwrap();
                assert_eq!(added, AddFile::Added);
            }
        })
        .await;
    println!("{} instant uploads in {:?}", FILES - 1, started.elapsed());
    let refs = || async {
        state
            .repo
            .get_content(&sha256)
            .await
            .unwrap()
            .map_or(0, |c| c.refs)
    };
    assert_eq!(refs().await, FILES as u64);
    let total = (FILES * SIZE) as u64;
    let top_id = top.folder_id.as_str();
    app.delete(&path(DeleteFolder, top_id)).await.expect(204);
    assert_eq!(usage(&app).await, (total, FILES as u64, total));

    // Counters and references agree with what is left, and the trash entry is gone.
    let consistent = |what: &'static str| {
        let app = &app;
        async move {
            let (used, count, trash) = usage(app).await;
            assert_eq!(used, count * SIZE as u64, "{what}");
            assert_eq!(trash, 0, "{what}");
            assert_eq!(refs().await, count, "{what}");
            count
        }
    };
    let (entry, _) = state.trashed(&app.user_id, top_id).await.unwrap();
    let begun = state.purge(&entry, &mut Budget::steps(250)).await.unwrap();
    assert!(begun.is_some_and(|p| !p.finished), "{begun:?}");
    let after_request = consistent("after the request's purge").await;
    assert!(
        after_request < FILES as u64 && after_request > 0,
        "{after_request}"
    );
    app.post(&path(RestoreTrash, top_id), json!({}))
        .await
        .expect_error(404, "not_found");

    let now = OffsetDateTime::now_utc();
    let mut report = filestore_janitor::Report::default();
    filestore_janitor::purge::purge_trash(state, now, &mut Budget::steps(400), &mut report)
        .await
        .unwrap();
    let after_stopped = consistent("after a stopped janitor run").await;
    assert!(
        after_stopped < after_request && after_stopped > 0,
        "{after_stopped}"
    );
    assert_eq!(report.purged_folder_files, after_request - after_stopped);

    let stopped = report;
    let report = filestore_janitor::sweep(state, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(report.purged_folder_files, after_stopped, "{report:?}");
    assert_eq!(consistent("after the sweep").await, 0);
    // The request's run deleted no folder record (it stopped in the deepest).
    assert_eq!(
        stopped.purged_folders + report.purged_folders,
        3,
        "{report:?}"
    );
    for id in &parents {
        assert_eq!(
            state
                .repo
                .get_folder(&app.user_id, &FolderId::parse(id).unwrap())
                .await
                .unwrap(),
            None
        );
        let (left, _) = state
            .repo
            .child_refs(&app.user_id, &FolderId::parse(id).unwrap(), 10, None)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
    assert!(
        state
            .repo
            .purges_due(OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_empty()
    );
    let left = state
        .storage
        .list(&format!("files/{}/", app.user_id))
        .await
        .unwrap();
    assert!(left.is_empty(), "objects left: {}", left.len());
    local.stop().await;
}

/// An upload into a folder below a trashed one cannot complete (`409 parent_gone`) and stays
/// active; once the folder is restored, the same complete succeeds there.
#[tokio::test]
async fn an_upload_into_a_trashed_subtree_completes_after_restore() {
    let app = TestApp::new().await;
    let a = new_folder(&app, "a", "root").await;
    let b = new_folder(&app, "b", a.folder_id.as_str()).await;
    let data = test_bytes(700, 9600);
    let upload: CreateUploadResponse = app
        .post(
            "/v1/uploads",
            json!({"name": "late.bin", "size": data.len(), "parent_id": b.folder_id}),
        )
        .await
        .expect_body(201);
    app.send_parts(&upload, &data, &[1]).await;
    app.delete(&path(DeleteFolder, a.folder_id.as_str()))
        .await
        .expect(204);
    let complete = path(CompleteUpload, &upload.upload_id);
    app.post(&complete, json!({}))
        .await
        .expect_error(409, "parent_gone");
    let status = app
        .get(&path(UploadStatus, &upload.upload_id))
        .await
        .expect(200);
    assert_eq!(status["state"], "active");
    app.post(&path(RestoreTrash, a.folder_id.as_str()), json!({}))
        .await
        .expect(200);
    let done: filestore_contract::api::FileEnvelope =
        app.post(&complete, json!({})).await.expect_body(201);
    assert_eq!(done.file.parent_id, b.folder_id);
    assert_eq!(app.download(&done.file.file_id).await, data);
}
