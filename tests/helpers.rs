//! What only the end-to-end binary needs beside the shared harness (`filestore-testkit`):
//! SDK clients on the system's emulator for checks and changes behind the API's back, the
//! functions' own state to call a handler directly, and the events AWS would deliver.

pub use filestore_testkit::*;

use filestore_contract::domain::{UploadId, UserId};
use filestore_dev::local_sdk_config;
use filestore_shared::keys;
use serde_json::json;

/// The SDK configuration of the system's emulator.
pub async fn local_sdk() -> aws_config::SdkConfig {
    let sys = system();
    local_sdk_config(&sys.endpoint_url, &sys.region).await
}

/// SDK clients on the system's emulator, for checks behind the API's back.
pub async fn aws() -> (aws_sdk_s3::Client, aws_sdk_dynamodb::Client) {
    let sys = system();
    let sdk = local_sdk_config(&sys.endpoint_url, &sys.region).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    (s3, aws_sdk_dynamodb::Client::new(&sdk))
}

/// Moves an upload's expiry into the past, as if it had been abandoned long ago (DynamoDB's
/// TTL sweep being lazy, the record itself stays).
pub async fn expire_upload(user_id: &UserId, upload_id: &UploadId) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (_, ddb) = aws().await;
    ddb.update_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(keys::user_pk(user_id)))
        .key("SK", AttributeValue::S(keys::upload_sk(upload_id)))
        // Both the expiry and when the janitor's index says it is due, as at creation.
        .update_expression("SET expires_at = :past, due_at = :past")
        .expression_attribute_values(":past", AttributeValue::S("2020-01-01T00:00:00Z".into()))
        .send()
        .await
        .unwrap();
}

/// Gives a user a quota of their own, as an operator would (the default is
/// `FILESTORE_QUOTA_BYTES`).
pub async fn set_quota(user_id: &UserId, bytes: u64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (_, ddb) = aws().await;
    ddb.update_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(keys::user_pk(user_id)))
        .key("SK", AttributeValue::S("PROFILE".into()))
        .update_expression("SET quota_bytes = :q")
        .expression_attribute_values(":q", AttributeValue::N(bytes.to_string()))
        .send()
        .await
        .unwrap();
}

/// What a user's profile counts against the quota, read behind the API's back:
/// `(claimed_bytes, open_uploads)` (stored bytes plus open uploads' declared sizes, and the
/// number of open uploads).
pub async fn claims(user_id: &UserId) -> (u64, u64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (_, ddb) = aws().await;
    let item = ddb
        .get_item()
        .table_name(&system().table)
        .key("PK", AttributeValue::S(keys::user_pk(user_id)))
        .key("SK", AttributeValue::S("PROFILE".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the user's profile");
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap(),
        other => panic!("{name} is {other:?}"),
    };
    (number("claimed_bytes"), number("open_uploads"))
}

/// How many multipart uploads S3 still holds open under a user's prefix.
pub async fn open_multipart_uploads(user_id: &UserId) -> usize {
    let (s3, _) = aws().await;
    s3.list_multipart_uploads()
        .bucket(&system().hot_bucket)
        .prefix(format!("files/{user_id}/"))
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

/// An S3 client on the cold store's own endpoint.
pub async fn cold_s3() -> aws_sdk_s3::Client {
    let sys = system();
    let sdk = local_sdk_config(&sys.cold_endpoint_url, &sys.region).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

/// The same state the functions run with, to call a handler directly.
pub async fn app_state() -> filestore_shared::AppState {
    let sys = system();
    let config = filestore_shared::Config::from_lookup(|name| {
        Some(match name {
            "AWS_ENDPOINT_URL" => sys.endpoint_url.clone(),
            "AWS_REGION" => sys.region.clone(),
            "FILESTORE_TABLE" => sys.table.clone(),
            "FILESTORE_HOT_BUCKET" => sys.hot_bucket.clone(),
            "FILESTORE_JWT_SECRET" => sys.jwt_secret.clone(),
            "FILESTORE_COLD_BUCKET" => sys.cold_bucket.clone(),
            "FILESTORE_COLD_ENDPOINT_URL" => sys.cold_endpoint_url.clone(),
            "FILESTORE_COLD_ACCESS_KEY_ID" => "cold".into(),
            "FILESTORE_COLD_SECRET_ACCESS_KEY" => "cold-secret".into(),
            _ => return None,
        })
    })
    .expect("test configuration");
    filestore_shared::AppState::new(
        config,
        &local_sdk_config(&sys.endpoint_url, &sys.region).await,
    )
}

/// The endpoint of a local system's cold store, where cold downloads point.
pub fn cold_endpoint(local: &filestore_dev::LocalSystem) -> String {
    let cold = local.state.config.cold.as_ref().expect("a cold store");
    cold.endpoint_url.clone().expect("a cold endpoint")
}

/// An SQS client on the emulator.
pub async fn sqs() -> aws_sdk_sqs::Client {
    let sys = system();
    aws_sdk_sqs::Client::new(&local_sdk_config(&sys.endpoint_url, &sys.region).await)
}

/// The S3 event notification announcing a created object in `bucket`, as the hot bucket sends it.
pub fn s3_event(bucket: &str, key: &str, size: usize) -> serde_json::Value {
    json!({"Records": [{
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}}
    }]})
}

/// One SQS message carrying `body`, as Lambda hands a batch to the transfer function.
pub fn sqs_batch(body: &serde_json::Value) -> aws_lambda_events::sqs::SqsEvent {
    serde_json::from_value(json!({"Records": [{
        "messageId": "m-1",
        "receiptHandle": "r",
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1"
    }]}))
    .unwrap()
}

/// Creates a folder named `name` in `parent` (`"root"` or a folder id).
pub async fn new_folder(
    app: &TestApp,
    name: &str,
    parent: &str,
) -> filestore_contract::api::FolderView {
    app.post("/v1/folders", json!({"name": name, "parent_id": parent}))
        .await
        .expect_body(201)
}

/// Uploads `data` as `name` into the folder `parent` and completes it; the answer to the
/// complete, whatever it is.
pub async fn upload_into_folder(app: &TestApp, name: &str, parent: &str, data: &[u8]) -> Resp {
    let upload: filestore_contract::api::CreateUploadResponse = app
        .post(
            "/v1/uploads",
            json!({"name": name, "size": data.len(), "parent_id": parent}),
        )
        .await
        .expect_body(201);
    let all: Vec<u64> = (1..=upload.part_count).collect();
    app.send_parts(&upload, data, &all).await;
    app.post(
        &path(
            filestore_contract::RouteKey::CompleteUpload,
            &upload.upload_id,
        ),
        json!({}),
    )
    .await
}

/// Uploads `data` as `name` into the folder `parent`.
pub async fn file_in_folder(
    app: &TestApp,
    name: &str,
    parent: &str,
    data: &[u8],
) -> filestore_contract::api::FileView {
    upload_into_folder(app, name, parent, data)
        .await
        .expect_body::<filestore_contract::api::FileEnvelope>(201)
        .file
}
