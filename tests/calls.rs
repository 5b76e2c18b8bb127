//! AWS calls per request, counted at the SDK: authentication checks the token version in the
//! same read that loads the user, so `GET /v1/me` costs one DynamoDB call and `GET /v1/files`
//! two (the user, then the page of files); the folder routes read one item per folder on the
//! way.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use filestore_shared::repo::Repo;
use filestore_shared::storage::Storage;
use lambda_http::{Body, Request};

use crate::helpers::{TestApp, app_state, local_sdk, system, test_bytes};

/// Records every request a client sends: DynamoDB's operation name, or S3's method.
#[derive(Clone, Debug, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let name = match request.headers().get("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => format!("S3 {}", request.method()),
        };
        self.0.lock().unwrap().push(name);
        Ok(())
    }
}

impl Calls {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The system's state with every DynamoDB and S3 call counted.
async fn counted_state() -> (filestore_shared::AppState, Calls) {
    let calls = Calls::default();
    let mut state = app_state().await;
    let sdk = local_sdk().await;
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(calls.clone())
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(calls.clone())
            .build(),
    );
    state.repo = Repo::new(ddb, state.config.table.clone());
    state.storage = Storage::new(s3, state.config.hot_bucket.clone());
    (state, calls)
}

fn get(path: &str, token: &str) -> Request {
    http::Request::builder()
        .method("GET")
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::Empty)
        .unwrap()
}

#[tokio::test]
async fn me_costs_one_call_and_a_file_list_two() {
    let app = TestApp::new().await;
    app.upload("counted.bin", &test_bytes(10, 91), None).await;
    let token = app.token.clone().unwrap();
    let (state, calls) = counted_state().await;
    assert_eq!(system().table, state.config.table);

    let resp = filestore_auth::handler(&state, get("/v1/me", &token))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let me = calls.take();
    println!("GET /v1/me: {} AWS call(s): {me:?}", me.len());
    assert_eq!(me, ["GetItem"]);

    let resp = filestore_files::handler(&state, get("/v1/files", &token))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let files = calls.take();
    println!("GET /v1/files: {} AWS call(s): {files:?}", files.len());
    assert_eq!(files, ["GetItem", "Query"]);
}

fn send(method: &str, path: &str, token: &str, body: serde_json::Value) -> Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap()
}

/// The folder routes, on a folder one level below the root (`/a/b`, with a file in `b`):
/// each chain walk is one GetItem per folder, a listing one Query and one BatchGetItem, every
/// write one transaction.
#[tokio::test]
async fn folder_routes_cost_a_read_per_folder_on_the_way() {
    use filestore_contract::api::FolderView;
    let app = TestApp::new().await;
    let a: FolderView = app
        .post("/v1/folders", serde_json::json!({"name": "a"}))
        .await
        .expect_body(201);
    let token = app.token.clone().unwrap();
    let (state, calls) = counted_state().await;
    let run = async |what: &str, req: Request, status: u16| {
        let resp = filestore_folders::handler(&state, req).await.unwrap();
        assert_eq!(resp.status(), status, "{what}");
        let made = calls.take();
        println!("{what}: {} AWS call(s): {made:?}", made.len());
        (resp, made)
    };
    let body = serde_json::json!({"name": "b", "parent_id": a.folder_id});
    let (resp, made) = run(
        "POST /v1/folders (in /a)",
        send("POST", "/v1/folders", &token, body),
        201,
    )
    .await;
    assert_eq!(made, ["GetItem", "GetItem", "TransactWriteItems"]);
    let b: FolderView = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("{other:?}"),
    };
    app.upload("f.txt", b"f", None).await;
    let (_, made) = run(
        "GET /v1/folders/{id} (/a/b)",
        get(&format!("/v1/folders/{}", b.folder_id), &token),
        200,
    )
    .await;
    assert_eq!(made, ["GetItem", "GetItem", "GetItem"]);
    let (_, made) = run(
        "GET /v1/folders/root/children",
        get("/v1/folders/root/children", &token),
        200,
    )
    .await;
    assert_eq!(made, ["GetItem", "Query", "BatchGetItem"]);
    let (_, made) = run(
        "GET /v1/paths (/a/b)",
        lambda_http::RequestExt::with_query_string_parameters(
            get("/v1/paths", &token),
            std::collections::HashMap::from([("path".to_string(), "/a/b".to_string())]),
        ),
        200,
    )
    .await;
    assert_eq!(
        made,
        ["GetItem", "GetItem", "GetItem", "GetItem", "GetItem"]
    );
    let (_, made) = run(
        "PATCH /v1/folders/{id} (rename /a/b)",
        send(
            "PATCH",
            &format!("/v1/folders/{}", b.folder_id),
            &token,
            serde_json::json!({"name": "c"}),
        ),
        200,
    )
    .await;
    assert_eq!(
        made,
        [
            "GetItem",
            "GetItem",
            "GetItem",
            "GetItem",
            "TransactWriteItems"
        ]
    );
    let (_, made) = run(
        "PATCH /v1/folders/{id} (move /a/c to /)",
        send(
            "PATCH",
            &format!("/v1/folders/{}", b.folder_id),
            &token,
            serde_json::json!({"parent_id": "root"}),
        ),
        200,
    )
    .await;
    assert_eq!(
        made,
        [
            "GetItem",
            "GetItem",
            "GetItem",
            "Query",
            "TransactWriteItems"
        ]
    );
}

/// A cold start's warm-up opens a connection to each service the function uses with one
/// call each: the table only for a function that uses only the table (its S3 client is
/// never built), the table and the hot bucket for the others. Each answer counts, the
/// emulator's "no such item" and "no such object" included.
#[tokio::test]
async fn the_warm_up_calls_only_the_services_a_function_uses() {
    use filestore_shared::state::Uses;
    let (state, calls) = counted_state().await;

    let outcomes = state.warm_up(Uses::DynamoDb).await;
    assert_eq!(outcomes, [("dynamodb", Ok(()))]);
    assert_eq!(calls.take(), ["GetItem"]);

    let outcomes = state.warm_up(Uses::DynamoDbAndS3).await;
    assert_eq!(outcomes, [("dynamodb", Ok(())), ("s3", Ok(()))]);
    let mut made = calls.take();
    made.sort();
    assert_eq!(made, ["GetItem", "S3 HEAD"]);
}

/// A page of `GET /v1/files` whose files share folders reads each folder once: five files in
/// `/a/b` cost the user, the page, then `b` and `a`, not a walk per file. Trashing `/a` reads
/// its chain, one page of each folder's child entries and one batch of each page's files (none
/// for a page without files),
/// then writes one transaction, whatever lies below.
#[tokio::test]
async fn a_page_of_files_reads_each_folder_on_the_way_once() {
    use crate::helpers::{file_in_folder, new_folder};
    let app = TestApp::new().await;
    let a = new_folder(&app, "a", "root").await;
    let b = new_folder(&app, "b", a.folder_id.as_str()).await;
    for i in 0..5u64 {
        file_in_folder(
            &app,
            &format!("f{i}"),
            b.folder_id.as_str(),
            &test_bytes(10, 95 + i),
        )
        .await;
    }
    let token = app.token.clone().unwrap();
    let (state, calls) = counted_state().await;
    let resp = filestore_files::handler(&state, get("/v1/files", &token))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let made = calls.take();
    println!(
        "GET /v1/files (5 files in /a/b): {} AWS call(s): {made:?}",
        made.len()
    );
    assert_eq!(made, ["GetItem", "Query", "GetItem", "GetItem"]);

    let delete = http::Request::builder()
        .method("DELETE")
        .uri(format!("/v1/folders/{}", a.folder_id))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::Empty)
        .unwrap();
    let resp = filestore_folders::handler(&state, delete).await.unwrap();
    assert_eq!(resp.status(), 204);
    let made = calls.take();
    println!(
        "DELETE /v1/folders/{{id}} (/a, 5 files in /a/b): {} AWS call(s): {made:?}",
        made.len()
    );
    assert_eq!(
        made,
        [
            "GetItem",
            "GetItem",
            "Query",
            "Query",
            "BatchGetItem",
            "TransactWriteItems"
        ]
    );
}
