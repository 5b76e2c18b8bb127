//! A folder of 2,500 entries (1,500 folders, 1,000 files) listed in pages: every entry once,
//! none lost or repeated across page boundaries, folders first, each kind by name bytes,
//! whatever the page size (including pages that end inside the folders, on the boundary
//! between the two kinds, and inside the files).

use filestore_contract::RouteKey::ListChildren;
use filestore_contract::api::{Entry, EntryList, MAX_LIST_LIMIT};
use filestore_contract::domain::{FileId, OnConflict};
use filestore_shared::keys;
use filestore_shared::repo::{AddFile, Copies, FileRecord};
use futures::StreamExt;

use crate::helpers::{TestApp, app_state, file_in_folder, new_folder, path, test_bytes};

const FOLDERS: usize = 1500;
const FILES: usize = 1000;

/// Every entry of `folder` as `kind:name`, page by page with `limit`.
async fn listed(app: &TestApp, folder: &str, limit: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}?limit={limit}", path(ListChildren, folder));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: EntryList = app.get(&url).await.expect_body(200);
        assert!(
            page.entries.len() <= limit as usize,
            "a page within its limit"
        );
        names.extend(page.entries.iter().map(|e| match e {
            Entry::Folder(f) => format!("folder:{}", f.name),
            Entry::File(f) => format!("file:{}", f.name),
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return names,
        }
    }
}

#[tokio::test]
async fn a_folder_of_2500_entries_lists_each_once_in_order_in_pages() {
    let app = TestApp::new().await;
    let big = new_folder(&app, "big", "root").await.folder_id.to_string();
    let started = std::time::Instant::now();
    futures::stream::iter(0..FOLDERS)
        .for_each_concurrent(8, |i| {
            let (app, big) = (&app, &big);
            async move {
                new_folder(app, &format!("d{i:04}"), big).await;
            }
        })
        .await;
    println!("{FOLDERS} folders created in {:?}", started.elapsed());

    // One file uploaded and verified by the transfer; the others are instant uploads of its
    // content, written as a correct proof writes them (1,000 real uploads would take minutes).
    let data = test_bytes(64, 2500);
    let first = file_in_folder(&app, "f0000.bin", &big, &data).await;
    app.verified(&first.file_id).await;
    let state = app_state().await;
    let record = state
        .repo
        .get_file(&app.user_id, &first.file_id)
        .await
        .unwrap()
        .expect("the uploaded file's record");
    let Copies::Verified { sha1, cold_key, .. } = record.copies.clone() else {
        panic!("the file was verified: {:?}", record.copies);
    };
    let started = std::time::Instant::now();
    futures::stream::iter(1..FILES)
        .for_each_concurrent(8, |i| {
            let (state, record, sha1, cold_key) = (&state, &record, &sha1, &cold_key);
            async move {
                let file_id = FileId::generate();
                let mut file = FileRecord {
                    file_id: file_id.clone(),
                    name: format!("f{i:04}.bin"),
                    object_key: keys::object_key(&record.user_id, &file_id),
                    upload_id: None,
                    copies: Copies::Verified {
                        sha1: sha1.clone(),
                        cold_key: cold_key.clone(),
                        hot_kept: false,
                    },
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
    println!("{} files added in {:?}", FILES - 1, started.elapsed());

    let expected: Vec<String> = (0..FOLDERS)
        .map(|i| format!("folder:d{i:04}"))
        .chain((0..FILES).map(|i| format!("file:f{i:04}.bin")))
        .collect();
    // 100 and 500 end pages exactly on the boundary between folders and files, 333 and 37
    // inside either kind, the largest in three pages.
    for limit in [MAX_LIST_LIMIT, 500, 333, 100, 37] {
        let started = std::time::Instant::now();
        let names = listed(&app, &big, limit).await;
        println!(
            "{} entries in pages of {limit} in {:?}",
            names.len(),
            started.elapsed()
        );
        assert_eq!(names.len(), expected.len(), "pages of {limit}");
        assert!(
            names == expected,
            "pages of {limit}: order or content differ"
        );
    }
}
