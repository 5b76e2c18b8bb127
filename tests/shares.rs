//! Share links: created by the owner, opened by anyone holding the link (a redirect to a
//! presigned GET), limited in time and downloads, revocable; every dead link is the same 404.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, aws, system, test_bytes};

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

async fn share(app: &TestApp, file_id: &str, body: Value) -> Value {
    app.post(&format!("/v1/files/{file_id}/shares"), body)
        .await
        .expect(201)
}

/// The owner shares a file; anyone with the link is redirected to its bytes; the owner sees
/// the link and its download count; a revoked link is a 404.
#[tokio::test]
async fn a_shared_link_serves_the_file_until_revoked() {
    let app = TestApp::new().await;
    let data = test_bytes(3000, 61);
    let file = app.upload("shared.bin", &data, None).await;
    let file_id = file["file_id"].as_str().unwrap();

    let created = share(&app, file_id, json!({"expires_in": 3600})).await;
    let url = created["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v1/s/", system().base_url)),
        "absolute link: {url}"
    );
    let token = url.rsplit('/').next().unwrap();
    assert!(token.len() >= 43, "at least 256 bits of token: {token}");
    assert_eq!(created["max_downloads"], Value::Null);

    let (status, location) = open(url).await;
    assert_eq!(status, 302);
    assert_eq!(fetch(&location.unwrap()).await, data);

    let listed = app
        .get(&format!("/v1/files/{file_id}/shares"))
        .await
        .expect(200);
    let shares = listed["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0]["share_id"], created["share_id"]);
    assert_eq!(shares[0]["downloads"], 1);
    assert_eq!(shares[0]["expires_at"], created["expires_at"]);
    assert!(
        shares[0].get("url").is_none() && !listed.to_string().contains(token),
        "the token is shown once, never listed"
    );

    let share_id = created["share_id"].as_str().unwrap();
    app.delete(&format!("/v1/shares/{share_id}"))
        .await
        .expect(204);
    assert_eq!(open(url).await.0, 404);
    app.delete(&format!("/v1/shares/{share_id}"))
        .await
        .expect_error(404, "not_found");
    let listed = app
        .get(&format!("/v1/files/{file_id}/shares"))
        .await
        .expect(200);
    assert_eq!(listed["shares"], json!([]));
}

/// The token is stored only as its hash: the table holds no item naming it.
#[tokio::test]
async fn share_tokens_are_stored_hashed() {
    let app = TestApp::new().await;
    let file = app.upload("h.bin", &test_bytes(10, 62), None).await;
    let created = share(
        &app,
        file["file_id"].as_str().unwrap(),
        json!({"expires_in": 60}),
    )
    .await;
    let token = created["url"].as_str().unwrap().rsplit('/').next().unwrap();
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
    let file_id = file["file_id"].as_str().unwrap();
    let created = share(
        &app,
        file_id,
        json!({"expires_in": 600, "max_downloads": 3}),
    )
    .await;
    assert_eq!(created["max_downloads"], 3);
    let url = created["url"].as_str().unwrap().to_string();
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
    let listed = app
        .get(&format!("/v1/files/{file_id}/shares"))
        .await
        .expect(200);
    assert_eq!(listed["shares"][0]["downloads"], 3);
    assert_eq!(listed["shares"][0]["max_downloads"], 3);
}

/// Expired links, links to deleted files, unknown and malformed tokens: all the same 404.
#[tokio::test]
async fn dead_links_are_all_the_same_404() {
    let app = TestApp::new().await;
    let file = app.upload("gone.bin", &test_bytes(10, 64), None).await;
    let file_id = file["file_id"].as_str().unwrap();

    let expiring = share(&app, file_id, json!({"expires_in": 60})).await;
    // Move the expiry into the past, as if the minute had gone by.
    {
        use aws_sdk_dynamodb::types::AttributeValue;
        let (_, ddb) = aws().await;
        let share_id = expiring["share_id"].as_str().unwrap();
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
    assert_eq!(open(live["url"].as_str().unwrap()).await.0, 302);
    let listed = app
        .get(&format!("/v1/files/{file_id}/shares"))
        .await
        .expect(200);
    assert_eq!(
        listed["shares"].as_array().unwrap().len(),
        1,
        "expired links are not listed"
    );
    app.delete(&format!("/v1/files/{file_id}"))
        .await
        .expect(204);

    let base = &system().base_url;
    let urls = [
        expiring["url"].as_str().unwrap().to_string(),
        live["url"].as_str().unwrap().to_string(),
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
    let path = format!("/v1/files/{}/shares", file["file_id"].as_str().unwrap());
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
        app.post(&path, body.clone())
            .await
            .expect_error(400, "invalid_request");
    }
    app.post(&path, json!({"expires_in": 2_592_000}))
        .await
        .expect(201);
    other
        .post(&path, json!({"expires_in": 60}))
        .await
        .expect_error(404, "not_found");
    other.get(&path).await.expect_error(404, "not_found");
    let unknown = format!("/v1/files/{}/shares", uuid::Uuid::now_v7());
    app.post(&unknown, json!({"expires_in": 60}))
        .await
        .expect_error(404, "not_found");
}
