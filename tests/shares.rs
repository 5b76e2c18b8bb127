//! Share links: created by the owner, opened by anyone holding the link (a redirect to a
//! presigned GET), limited in time and downloads, revocable; every dead link is the same 404.

use filestore_contract::RouteKey::{
    CreateShare, DeleteFile, DeleteFolder, ListShares, RestoreTrash, RevokeShare,
};
use filestore_contract::api::{CreateShareResponse, ShareList};
use filestore_contract::domain::FileId;
use futures::future::join_all;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{
    TestApp, app_state, aws, base_url, file_in_folder, new_folder, path, system, test_bytes,
};

/// An anonymous client that does not follow redirects.
fn anyone() -> reqwest::Client {
    crate::helpers::http_client()
}

/// Opens a link: its status and `Location`.
async fn open(url: &str) -> (u16, Option<String>) {
    let resp = anyone().get(url).send().await.unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), location)
}

async fn fetch(url: &str) -> Vec<u8> {
    let resp = anyone().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

async fn share(app: &TestApp, file_id: &FileId, body: Value) -> CreateShareResponse {
    app.post(&path(CreateShare, file_id), body)
        .await
        .expect_body(201)
}

async fn shares(app: &TestApp, file_id: &FileId) -> ShareList {
    app.get(&path(ListShares, file_id)).await.expect_body(200)
}

/// The owner shares a file; anyone with the link is redirected to its bytes; the owner sees
/// the link and its download count; a revoked link is a 404.
#[tokio::test]
async fn a_shared_link_serves_the_file_until_revoked() {
    let app = TestApp::new().await;
    let data = test_bytes(3000, 61);
    let file = app.upload("shared.bin", &data, None).await;
    let file_id = &file.file_id;

    let created = share(&app, file_id, json!({"expires_in": 3600})).await;
    let url = created.url.as_str();
    assert!(
        url.starts_with(&format!("{}/v1/s/", base_url())),
        "absolute link: {url}"
    );
    let token = url.rsplit('/').next().unwrap();
    assert!(token.len() >= 43, "at least 256 bits of token: {token}");
    assert_eq!(created.max_downloads, None);

    let (status, location) = open(url).await;
    assert_eq!(status, 302);
    assert_eq!(fetch(&location.unwrap()).await, data);

    // Raw, to see the listing carries no link and no token anywhere.
    let listed = app.get(&path(ListShares, file_id)).await.expect(200);
    let typed: ShareList = serde_json::from_value(listed.clone()).unwrap();
    assert_eq!(typed.shares.len(), 1);
    assert_eq!(typed.shares[0].share_id, created.share_id);
    assert_eq!(typed.shares[0].downloads, 1);
    assert_eq!(typed.shares[0].expires_at, created.expires_at);
    assert!(
        listed["shares"][0].get("url").is_none() && !listed.to_string().contains(token),
        "the token is shown once, never listed"
    );

    let share_id = &created.share_id;
    app.delete(&path(RevokeShare, share_id)).await.expect(204);
    assert_eq!(open(url).await.0, 404);
    app.delete(&path(RevokeShare, share_id))
        .await
        .expect_error(404, "not_found");
    assert!(shares(&app, file_id).await.shares.is_empty());
}

/// The token is stored only as its hash: the table holds no item naming it.
#[tokio::test]
async fn share_tokens_are_stored_hashed() {
    let app = TestApp::new().await;
    let file = app.upload("h.bin", &test_bytes(10, 62), None).await;
    let created = share(&app, &file.file_id, json!({"expires_in": 60})).await;
    let token = created.url.rsplit('/').next().unwrap();
    let (_, ddb) = aws().await;
    let items = ddb.scan().table_name(&system().table).send().await.unwrap();
    let dump = format!("{:?}", items.items());
    assert!(!dump.contains(token), "the raw token is in the table");
}

/// A download limit holds under concurrent opens: with a limit of 3 and 10 clients at once,
/// exactly 3 are redirected; the count shown is 3.
#[tokio::test]
async fn the_download_limit_is_exact_under_concurrency() {
    let app = TestApp::new().await;
    let file = app.upload("limited.bin", &test_bytes(100, 63), None).await;
    let file_id = &file.file_id;
    let created = share(
        &app,
        file_id,
        json!({"expires_in": 600, "max_downloads": 3}),
    )
    .await;
    assert_eq!(created.max_downloads, Some(3));
    let url = created.url;
    let statuses: Vec<u16> = join_all((0..10).map(|_| {
        let url = url.clone();
        async move { open(&url).await.0 }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 302).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 404).count(),
        7,
        "{statuses:?}"
    );
    let listed = shares(&app, file_id).await;
    assert_eq!(listed.shares[0].downloads, 3);
    assert_eq!(listed.shares[0].max_downloads, Some(3));
}

/// Expired links, links to deleted files, unknown and malformed tokens: all the same 404.
#[tokio::test]
async fn dead_links_are_all_the_same_404() {
    let app = TestApp::new().await;
    let file = app.upload("gone.bin", &test_bytes(10, 64), None).await;
    let file_id = &file.file_id;

    let expiring = share(&app, file_id, json!({"expires_in": 60})).await;
    // Move the expiry into the past, as if the minute had gone by.
    {
        use aws_sdk_dynamodb::types::AttributeValue;
        let (_, ddb) = aws().await;
        let share_id = &expiring.share_id;
        ddb.update_item()
            .table_name(&system().table)
            .key("PK", AttributeValue::S(format!("USER#{}", app.user_id)))
            .key("SK", AttributeValue::S(format!("SHARE#{share_id}")))
            .update_expression("SET expires_epoch = :past")
            .expression_attribute_values(":past", AttributeValue::N("1600000000".into()))
            .send()
            .await
            .unwrap();
    }
    let live = share(&app, file_id, json!({"expires_in": 600})).await;
    assert_eq!(open(&live.url).await.0, 302);
    assert_eq!(
        shares(&app, file_id).await.shares.len(),
        1,
        "expired links are not listed"
    );
    app.delete(&path(DeleteFile, file_id)).await.expect(204);

    let base = base_url();
    let urls = [
        expiring.url,
        live.url,
        format!("{base}/v1/s/{}", "A".repeat(43)),
        format!("{base}/v1/s/short"),
        format!("{base}/v1/s/{}", "%00".repeat(10)),
    ];
    let mut bodies = Vec::new();
    for url in &urls {
        let resp = anyone().get(url).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{url}");
        bodies.push(resp.bytes().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

/// Share creation checks its input: `expires_in` 60..2592000, `max_downloads` >= 1, no unknown
/// fields; a share of a file that is not the caller's is a 404.
#[tokio::test]
async fn share_input_is_validated_and_scoped_to_the_owner() {
    let app = TestApp::new().await;
    let other = TestApp::new().await;
    let file = app.upload("mine.bin", &test_bytes(10, 65), None).await;
    let shares_path = path(CreateShare, &file.file_id);
    for body in [
        json!({}),
        json!({"expires_in": 59}),
        json!({"expires_in": 2_592_001}),
        json!({"expires_in": -1}),
        json!({"expires_in": "60"}),
        json!({"expires_in": 60, "max_downloads": 0}),
        json!({"expires_in": 60, "max_downloads": 1.5}),
        json!({"expires_in": 60, "public": true}),
    ] {
        app.post(&shares_path, body.clone())
            .await
            .expect_error(400, "invalid_request");
    }
    app.post(&shares_path, json!({"expires_in": 2_592_000}))
        .await
        .expect(201);
    other
        .post(&shares_path, json!({"expires_in": 60}))
        .await
        .expect_error(404, "not_found");
    other.get(&shares_path).await.expect_error(404, "not_found");
    let unknown = path(CreateShare, uuid::Uuid::now_v7().to_string());
    app.post(&unknown, json!({"expires_in": 60}))
        .await
        .expect_error(404, "not_found");
}

/// A share link is built from the deployment's public URL, never from the request: a
/// client sending `Host: evil.example` and `X-Forwarded-Proto: javascript` (or
/// `X-Forwarded-Host`, `Forwarded`) still gets a link to the API itself, which works.
#[tokio::test]
async fn share_links_ignore_forged_host_and_forwarding_headers() {
    let app = TestApp::new().await;
    let data = test_bytes(1000, 68);
    let file = app.upload("forged.bin", &data, None).await;
    let forgeries: [&[(&str, &str)]; 4] = [
        &[
            ("host", "evil.example"),
            ("x-forwarded-proto", "javascript"),
        ],
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "javascript"),
        ],
        &[("forwarded", "host=evil.example;proto=javascript")],
        &[("host", "evil.example:443"), ("x-forwarded-port", "443")],
    ];
    for headers in forgeries {
        let mut req = app
            .http
            .post(format!("{}{}", app.base, path(CreateShare, &file.file_id)))
            .bearer_auth(app.token.as_deref().unwrap())
            .header("content-type", "application/json")
            .body(json!({"expires_in": 600}).to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 201, "{headers:?}");
        let created: CreateShareResponse = resp.json().await.unwrap();
        assert!(
            created.url.starts_with(&format!("{}/v1/s/", base_url())),
            "{headers:?} made {}",
            created.url
        );
        let (status, location) = open(&created.url).await;
        assert_eq!(status, 302);
        assert_eq!(fetch(&location.unwrap()).await, data);
    }
}

/// The interleaving a link opened while its file's folder is trashed can take: the opener
/// read the file and its folders live, then the folder went to the trash, then the opener
/// counts. The count is conditioned on the folders as read, so it counts nothing and
/// serves nothing; after a restore the link works again.
#[tokio::test]
async fn a_link_read_live_counts_nothing_once_a_folder_above_is_trashed() {
    let app = TestApp::new().await;
    let outer = new_folder(&app, "outer", "root").await;
    let inner = new_folder(&app, "inner", outer.folder_id.as_str()).await;
    let data = test_bytes(300, 77);
    let file = file_in_folder(&app, "deep.bin", inner.folder_id.as_str(), &data).await;
    let link = share(&app, &file.file_id, json!({"expires_in": 3600})).await;
    let state = app_state().await;
    let repo = &state.repo;
    let record = repo
        .get_share(&app.user_id, &link.share_id)
        .await
        .unwrap()
        .unwrap();
    let read = repo
        .get_file(&app.user_id, &file.file_id)
        .await
        .unwrap()
        .unwrap();
    let chain = repo
        .live_chain(&app.user_id, &read.parent_id)
        .await
        .unwrap()
        .expect("the folders are live when read");
    assert_eq!(chain.len(), 2);

    app.delete(&path(DeleteFolder, &outer.folder_id))
        .await
        .expect(204);
    let now = OffsetDateTime::now_utc();
    assert!(
        !repo
            .count_share_download(&record, &read, &chain, now)
            .await
            .unwrap(),
        "a download counted through a folder trashed after the read"
    );
    assert_eq!(open(&link.url).await.0, 404);
    let counted = repo.get_share(&app.user_id, &link.share_id).await.unwrap();
    assert_eq!(
        counted.unwrap().downloads,
        0,
        "nothing counted while trashed"
    );

    app.post(&path(RestoreTrash, &outer.folder_id), json!({}))
        .await
        .expect(200);
    assert!(
        repo.count_share_download(&record, &read, &chain, now)
            .await
            .unwrap()
    );
    let (status, location) = open(&link.url).await;
    assert_eq!(status, 302);
    assert_eq!(fetch(&location.unwrap()).await, data);
    let listed = shares(&app, &file.file_id).await;
    assert_eq!(
        listed.shares[0].downloads, 2,
        "the two counts after the restore"
    );
}
