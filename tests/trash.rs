//! The trash: a deleted file is a 404 everywhere (its share links too, counting nothing) and
//! out of the listing, yet keeps its bytes and usage until purged; the trash lists it newest
//! first; restore brings it back whole, purge and empty free what a v1 delete freed, the
//! janitor purges what outlived the retention. Races as races: restore against purge, two
//! restores, trash against the transfer's verification.

use std::time::Duration;

use filestore_contract::RouteKey::{
    CreateShare, DeleteFile, DownloadFile, GetFile, ListShares, PurgeTrash, RenameFile,
    RestoreTrash,
};
use filestore_contract::api::{CreateShareResponse, Entry, ShareList, TrashList};
use filestore_contract::domain::{EntryType, FileId};
use filestore_dev::{LocalSystem, Options};
use filestore_shared::keys;
use filestore_shared::repo::{Verified, VerifyOutcome};
use filestore_transfer::{CopyJob, Place, Progress};
use futures::future::join_all;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{TestApp, aws, path, system, test_bytes};

/// Trials per race: enough for every interleaving the two sides can take to come up.
const TRIALS: usize = 30;

const TRASH: &str = "/v1/trash";

fn time(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

async fn hot_object_exists(app: &TestApp, file_id: &FileId) -> bool {
    let (s3, _) = aws().await;
    s3.head_object()
        .bucket(&system().hot_bucket)
        .key(keys::object_key(&app.user_id, file_id))
        .send()
        .await
        .is_ok()
}

/// Usage as `GET /v1/me` shows it: (used_bytes, file_count, trash_bytes).
async fn usage(app: &TestApp) -> (u64, u64, u64) {
    let me = app.me().await;
    (me.used_bytes, me.file_count, me.trash_bytes)
}

/// A trashed file is a 404 on every file route, its share link is a 404 that counts no
/// download, and it is out of the listing; its bytes, object and usage stay, shown in
/// `trash_bytes`. The trash shows it with the contract's fields; restored, it is back whole,
/// link included.
#[tokio::test]
async fn a_trashed_file_is_gone_everywhere_until_restored_whole() {
    let app = TestApp::new().await;
    let data = test_bytes(3000, 8101);
    let file = app.upload("report.pdf", &data, None).await;
    let keep = app.upload("keep.txt", b"keep", None).await;
    let id = &file.file_id;
    let link: CreateShareResponse = app
        .post(&path(CreateShare, id), json!({"expires_in": 3600}))
        .await
        .expect_body(201);
    let open = || async {
        let resp = crate::helpers::http_client()
            .get(&link.url)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    };

    app.delete(&path(DeleteFile, id)).await.expect(204);
    for p in [
        path(GetFile, id),
        path(DownloadFile, id),
        path(ListShares, id),
    ] {
        app.get(&p).await.expect_error(404, "not_found");
    }
    app.get(&format!("{}?redirect=true", path(DownloadFile, id)))
        .await
        .expect_error(404, "not_found");
    app.patch(&path(RenameFile, id), json!({"name": "x.pdf"}))
        .await
        .expect_error(404, "not_found");
    app.post(&path(CreateShare, id), json!({"expires_in": 600}))
        .await
        .expect_error(404, "not_found");
    app.delete(&path(DeleteFile, id))
        .await
        .expect_error(404, "not_found");
    for _ in 0..3 {
        assert_eq!(open().await, 404);
    }
    let listed: Vec<FileId> = app
        .list_files()
        .await
        .files
        .into_iter()
        .map(|f| f.file_id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&keep.file_id));
    assert_eq!(usage(&app).await, (3004, 2, 3000));
    assert!(hot_object_exists(&app, id).await);

    let before = OffsetDateTime::now_utc();
    let trash = app.trash().await;
    assert_eq!(trash.next_cursor, None);
    let [entry] = trash.entries.as_slice() else {
        panic!("one entry: {trash:?}");
    };
    assert_eq!(entry.entry_type, EntryType::File);
    assert_eq!(entry.id, id.as_str());
    assert_eq!(entry.name, "report.pdf");
    assert_eq!(entry.size, 3000);
    assert_eq!(entry.original_parent_id, "root");
    let trashed_at = time(&entry.trashed_at);
    assert!(trashed_at <= before, "{entry:?}");
    assert_eq!(
        time(&entry.purge_at) - trashed_at,
        Duration::from_secs(2_592_000),
        "purged after the default retention"
    );
    let raw = app.get(TRASH).await.expect(200);
    let keys_of = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys_of(&raw["entries"][0]),
        [
            "id",
            "name",
            "original_parent_id",
            "purge_at",
            "size",
            "trashed_at",
            "type"
        ]
    );
    assert_eq!(raw["entries"][0]["type"], "file");

    let restored: Entry = app
        .post(&path(RestoreTrash, id), json!({}))
        .await
        .expect_body(200);
    let Entry::File(restored) = restored else {
        panic!("a file was restored")
    };
    assert_eq!(
        (&restored.file_id, restored.name.as_str(), restored.size),
        (id, "report.pdf", 3000)
    );
    let raw = app
        .get(&path(GetFile, id))
        .await
        .expect_body::<serde_json::Value>(200);
    assert_eq!(raw["name"], "report.pdf");
    assert_eq!(app.download(id).await, data);
    assert_eq!(usage(&app).await, (3004, 2, 0));
    assert!(app.trash().await.entries.is_empty());
    assert_eq!(app.list_files().await.files.len(), 2);
    // The link works again, and the opens while trashed counted nothing.
    let shares: ShareList = app.get(&path(ListShares, id)).await.expect_body(200);
    assert_eq!(shares.shares[0].downloads, 0);
    assert_eq!(open().await, 302);
    let shares: ShareList = app.get(&path(ListShares, id)).await.expect_body(200);
    assert_eq!(shares.shares[0].downloads, 1);
    // The raw restore answer names its type.
    app.delete(&path(DeleteFile, id)).await.expect(204);
    let raw = app
        .post(
            &path(RestoreTrash, id),
            json!({"name": "renamed.pdf", "parent_id": "root"}),
        )
        .await
        .expect(200);
    assert_eq!(raw["type"], "file");
    assert_eq!(raw["name"], "renamed.pdf");
    assert_eq!(app.file(id).await.name, "renamed.pdf");
}

/// Restore and purge take only the caller's trashed items: a live file, an unknown or
/// malformed id, another folder that does not exist are 404; a bad body is a 400; a second
/// restore or purge is a 404.
#[tokio::test]
async fn restore_and_purge_refuse_what_is_not_in_the_trash() {
    let app = TestApp::new().await;
    let file = app.upload("a.txt", b"aaa", None).await;
    let id = &file.file_id;
    let unknown = FileId::generate();
    for p in [id.as_str(), unknown.as_str(), "not-an-id"] {
        app.post(&path(RestoreTrash, p), json!({}))
            .await
            .expect_error(404, "not_found");
        app.delete(&path(PurgeTrash, p))
            .await
            .expect_error(404, "not_found");
    }
    app.delete(&path(DeleteFile, id)).await.expect(204);
    for body in [
        json!({"is_admin": true}),
        json!({"name": ""}),
        json!({"name": "a/b"}),
        json!({"name": ".."}),
        json!({"name": 7}),
        json!({"parent_id": 7}),
        json!({"parent_id": "nope"}),
    ] {
        app.post(&path(RestoreTrash, id), body.clone())
            .await
            .expect_error(400, "invalid_request");
    }
    app.post(
        &path(RestoreTrash, id),
        json!({"parent_id": FileId::generate()}),
    )
    .await
    .expect_error(404, "not_found");
    // Still in the trash after every refusal.
    assert_eq!(app.trash().await.entries.len(), 1);
    app.post(&path(RestoreTrash, id), json!({}))
        .await
        .expect(200);
    app.post(&path(RestoreTrash, id), json!({}))
        .await
        .expect_error(404, "not_found");
    app.delete(&path(DeleteFile, id)).await.expect(204);
    app.delete(&path(PurgeTrash, id)).await.expect(204);
    app.delete(&path(PurgeTrash, id))
        .await
        .expect_error(404, "not_found");
    app.post(&path(RestoreTrash, id), json!({}))
        .await
        .expect_error(404, "not_found");
    app.get(&path(GetFile, id))
        .await
        .expect_error(404, "not_found");
}

/// The trash lists newest first, in pages of `limit`, each entry once; the last page has no
/// cursor; bad limits and forged cursors are 400.
#[tokio::test]
async fn the_trash_lists_newest_first_in_pages() {
    let app = TestApp::new().await;
    let mut trashed = Vec::new();
    for i in 0..7u8 {
        let file = app.upload(&format!("t{i}.txt"), &[i], None).await;
        app.delete(&path(DeleteFile, &file.file_id))
            .await
            .expect(204);
        trashed.push(file.file_id.to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{TRASH}?limit=3&cursor={c}"),
            None => format!("{TRASH}?limit=3"),
        };
        let page: TrashList = app.get(&url).await.expect_body(200);
        assert!(page.entries.len() <= 3);
        seen.extend(page.entries.iter().map(|e| e.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    trashed.reverse();
    assert_eq!(seen, trashed);
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=!!!",
        "cursor=Zm9v",
    ] {
        app.get(&format!("{TRASH}?{bad}"))
            .await
            .expect_error(400, &format!("invalid_{}", bad.split('=').next().unwrap()));
    }
}

/// Purging one item frees its bytes and usage and removes its object; emptying the trash
/// purges everything in it and nothing else.
#[tokio::test]
async fn purge_and_empty_free_what_a_delete_freed() {
    let app = TestApp::new().await;
    let keep = app.upload("keep.bin", &test_bytes(100, 8201), None).await;
    let mut ids = Vec::new();
    for i in 0..4u64 {
        let file = app
            .upload(&format!("g{i}.bin"), &test_bytes(1000, 8210 + i), None)
            .await;
        app.delete(&path(DeleteFile, &file.file_id))
            .await
            .expect(204);
        ids.push(file.file_id);
    }
    assert_eq!(usage(&app).await, (4100, 5, 4000));
    app.delete(&path(PurgeTrash, &ids[0])).await.expect(204);
    assert_eq!(usage(&app).await, (3100, 4, 3000));
    assert!(!hot_object_exists(&app, &ids[0]).await);
    assert!(hot_object_exists(&app, &ids[1]).await);

    app.delete(TRASH).await.expect(204);
    assert_eq!(usage(&app).await, (100, 1, 0));
    assert!(app.trash().await.entries.is_empty());
    for id in &ids {
        assert!(!hot_object_exists(&app, id).await);
    }
    assert_eq!(app.list_files().await.files.len(), 1);
    assert_eq!(app.download(&keep.file_id).await, test_bytes(100, 8201));
    // An empty trash empties again.
    app.delete(TRASH).await.expect(204);
}

/// Another user's trashed file is a 404 to restore and purge, absent from the caller's trash,
/// and their emptying the trash leaves it alone.
#[tokio::test]
async fn another_users_trash_is_not_reachable() {
    let a = TestApp::new().await;
    let b = TestApp::new().await;
    let file = a.upload("mine.txt", b"mine", None).await;
    let id = &file.file_id;
    a.delete(&path(DeleteFile, id)).await.expect(204);
    b.post(&path(RestoreTrash, id), json!({}))
        .await
        .expect_error(404, "not_found");
    b.delete(&path(PurgeTrash, id))
        .await
        .expect_error(404, "not_found");
    assert!(b.trash().await.entries.is_empty());
    b.delete(TRASH).await.expect(204);
    assert_eq!(a.trash().await.entries.len(), 1);
    assert_eq!(usage(&a).await, (4, 1, 4));
    assert_eq!(usage(&b).await, (0, 0, 0));
    a.post(&path(RestoreTrash, id), json!({})).await.expect(200);
}

/// A restore and a purge of one item at the same time: in every trial exactly one wins (200
/// or 204, the other 404), and the counters are exactly what the winner leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_racing_purge_has_exactly_one_winner() {
    let app = TestApp::new().await;
    let (mut restored, mut purged) = (0u64, 0u64);
    let mut kept_bytes = 0u64;
    for trial in 0..TRIALS {
        let size = 100 + trial;
        let file = app
            .upload(
                &format!("r{trial}.bin"),
                &test_bytes(size, 8300 + trial as u64),
                None,
            )
            .await;
        let id = &file.file_id;
        app.delete(&path(DeleteFile, id)).await.expect(204);
        let restore_path = path(RestoreTrash, id);
        let purge_path = path(PurgeTrash, id);
        let (r, p) = tokio::join!(app.post(&restore_path, json!({})), app.delete(&purge_path));
        match (r.status.as_u16(), p.status.as_u16()) {
            (200, 404) => {
                restored += 1;
                kept_bytes += size as u64;
                assert_eq!(app.file(id).await.size, size as u64);
            }
            (404, 204) => {
                purged += 1;
                app.get(&path(GetFile, id))
                    .await
                    .expect_error(404, "not_found");
            }
            other => panic!("trial {trial}: restore and purge answered {other:?}"),
        }
        assert_eq!(
            usage(&app).await,
            (kept_bytes, restored, 0),
            "trial {trial}"
        );
    }
    assert!(app.trash().await.entries.is_empty());
    println!("restore won {restored}, purge won {purged} of {TRIALS}");
}

/// Two restores of one item at the same time: exactly one answers 200, the other 404, and
/// `trash_bytes` is taken down once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_restores_at_once_restore_once() {
    let app = TestApp::new().await;
    let mut total = 0u64;
    for trial in 0..TRIALS {
        let size = 50 + trial;
        total += size as u64;
        let file = app
            .upload(
                &format!("d{trial}.bin"),
                &test_bytes(size, 8400 + trial as u64),
                None,
            )
            .await;
        let id = &file.file_id;
        app.delete(&path(DeleteFile, id)).await.expect(204);
        let restore = path(RestoreTrash, id);
        let answers = join_all((0..2).map(|_| app.post(&restore, json!({})))).await;
        let mut statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 404], "trial {trial}");
        assert_eq!(
            usage(&app).await,
            (total, trial as u64 + 1, 0),
            "trial {trial}"
        );
    }
}

/// The transfer's verification (a reference on the content) races the trash: whichever
/// commits first, the trashed file holds its reference until it is purged, and the purge
/// releases it exactly once. In every trial the content is referenced while the file is in
/// the trash and unreferenced after the purge; the janitor then collects every content, and
/// its reference check finds nothing to repair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_racing_verification_releases_the_reference_once_at_purge() {
    let mut options = Options::isolated();
    // The test plays the transfer, so it decides when verification lands.
    options.run_worker = false;
    let local = LocalSystem::start(options).await.unwrap();
    let state = &local.state;
    let cold = state.cold.as_ref().unwrap();
    let app = TestApp::new_at(&local.base_url()).await;

    let mut trials = Vec::new();
    let (mut held, mut leaked) = (Vec::new(), Vec::new());
    for trial in 0..TRIALS {
        let data = test_bytes(2000 + trial, 8500 + trial as u64);
        let file = app.upload(&format!("v{trial}.bin"), &data, None).await;
        let file_id = &file.file_id;
        let hot_key = keys::object_key(&app.user_id, file_id);
        let cold_key = keys::cold_key(file_id);
        let copied = CopyJob::new(
            Place {
                store: &state.storage,
                key: &hot_key,
            },
            Place {
                store: cold,
                key: &cold_key,
            },
            data.len() as u64,
        )
        .run()
        .await
        .unwrap();
        let Progress::Done(copied) = copied else {
            panic!("a copy with no time limit finishes: {copied:?}");
        };
        let record = state
            .repo
            .get_file(&app.user_id, file_id)
            .await
            .unwrap()
            .unwrap();
        let found = Verified {
            sha256: copied.sha256.clone(),
            sha1: copied.sha1.clone(),
            size: copied.size,
            cold_key: cold_key.clone(),
        };
        let verify = async {
            tokio::time::sleep(Duration::from_millis((trial % 10) as u64)).await;
            let outcome = state.repo.record_verified(&record, &found).await.unwrap();
            assert_ne!(
                outcome,
                VerifyOutcome::Stale,
                "a trashed file is still verified"
            );
        };
        let trash = path(DeleteFile, file_id);
        let (_, trashed) = tokio::join!(verify, app.delete(&trash));
        trashed.expect(204);
        let refs = |sha256: String| async move {
            state
                .repo
                .get_content(&sha256)
                .await
                .unwrap()
                .map_or(0, |c| c.refs)
        };
        if refs(copied.sha256.clone()).await != 1 {
            held.push(trial);
        }
        app.delete(&path(PurgeTrash, file_id)).await.expect(204);
        if refs(copied.sha256.clone()).await != 0 {
            leaked.push(trial);
        }
        trials.push((copied.sha256, cold_key));
    }
    assert!(
        held.is_empty(),
        "trashed files without their reference: {held:?}"
    );
    assert!(
        leaked.is_empty(),
        "purges that left a reference: {leaked:?}"
    );
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count, me.trash_bytes), (0, 0, 0));

    let later = OffsetDateTime::now_utc() + filestore_janitor::REFS_CHECK_EVERY * 2;
    let report = filestore_janitor::sweep(state, later).await.unwrap();
    assert_eq!(report.repaired_refs, 0, "{report:?}");
    for (sha256, cold_key) in &trials {
        assert_eq!(state.repo.get_content(sha256).await.unwrap(), None);
        assert_eq!(
            cold.object_size(cold_key).await.unwrap(),
            None,
            "{cold_key}"
        );
    }
    local.stop().await;
}

/// With a short retention, the janitor purges what has been in the trash longer: before its
/// `purge_at` a sweep leaves the entry alone, after it the entry is purged as a purge would
/// (usage freed, object removed), and a restored file is never purged.
#[tokio::test]
async fn the_janitor_purges_the_trash_after_the_retention() {
    let mut options = Options::isolated();
    options.config.trash_retention = Duration::from_secs(60);
    let local = LocalSystem::start(options).await.unwrap();
    let state = &local.state;
    let app = TestApp::new_at(&local.base_url()).await;
    let old = app.upload("old.bin", &test_bytes(700, 8601), None).await;
    let back = app.upload("back.bin", &test_bytes(300, 8602), None).await;
    for file in [&old, &back] {
        app.delete(&path(DeleteFile, &file.file_id))
            .await
            .expect(204);
    }
    let entry = app.trash().await.entries[0].clone();
    assert_eq!(
        time(&entry.purge_at) - time(&entry.trashed_at),
        Duration::from_secs(60)
    );
    app.post(&path(RestoreTrash, &back.file_id), json!({}))
        .await
        .expect(200);

    let now = OffsetDateTime::now_utc();
    let report = filestore_janitor::sweep(state, now).await.unwrap();
    assert_eq!(report.purged_trash, 0, "{report:?}");
    assert_eq!(app.trash().await.entries.len(), 1);
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.trash_bytes), (1000, 700));

    let report = filestore_janitor::sweep(state, now + Duration::from_secs(61))
        .await
        .unwrap();
    assert_eq!(report.purged_trash, 1, "{report:?}");
    assert!(app.trash().await.entries.is_empty());
    let me = app.me().await;
    assert_eq!((me.used_bytes, me.file_count, me.trash_bytes), (300, 1, 0));
    let old_object = keys::object_key(&app.user_id, &old.file_id);
    assert_eq!(
        state.storage.object_size(&old_object).await.unwrap(),
        None,
        "the purged file's object is still stored"
    );
    assert_eq!(app.file(&back.file_id).await.name, "back.bin");
    local.stop().await;
}
