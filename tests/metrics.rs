//! What an operator sees: each flow's metrics (EMF lines, as Lambda's stdout carries them)
//! with the right values, and log lines that carry the request id the client got back.
//! Requests run in parallel, so each test reads only the lines of its own requests.

use filestore_contract::RouteKey::{CompleteUpload, CreateUpload, FastUploadProof, Login};
use filestore_contract::api::{ChallengeResponse, CreateUploadResponse};
use filestore_shared::metrics::{
    COLD_STARTS, INIT_DURATION, INSTANT_UPLOAD_HITS, INSTANT_UPLOAD_REFUSALS, LOGIN_FAILURES,
    LOGINS_THROTTLED, Metric, TRANSFER_BYTES, TRANSFER_DURATION, TRANSFER_THROUGHPUT,
    UPLOADS_COMPLETED, UPLOADS_COMPLETED_BYTES, UPLOADS_CREATED, UPLOADS_CREATED_BYTES,
};
use serde_json::{Value, json};

use crate::helpers::output::{assert_declared, lines, logs_of, metric_of, metrics_of};
use crate::helpers::{MIB, Resp, TestApp, answer, eventually, path, sha256_hex, test_bytes};

/// The value of `metric` written for the request of `resp`, as a number.
#[track_caller]
fn value(resp: &Resp, metric: Metric) -> Option<f64> {
    metric_of(&resp.request_id(), metric.name).map(|v| {
        v.as_f64()
            .unwrap_or_else(|| panic!("{} is not one number: {v}", metric.name))
    })
}

/// The `function` dimension of the EMF documents of a request.
fn functions_of(request_id: &str) -> Vec<String> {
    metrics_of(request_id)
        .iter()
        .filter_map(|d| d["function"].as_str().map(str::to_string))
        .collect()
}

/// An upload counts once when created and once when completed, each with its bytes, under
/// the function that did it; a request that records nothing writes no metrics.
#[tokio::test]
async fn an_upload_is_counted_when_created_and_when_completed_with_its_bytes() {
    let app = TestApp::new().await;
    let data = test_bytes(6 * MIB + 123, 171);
    let created = app
        .post(
            CreateUpload.template(),
            json!({"name": "counted.bin", "size": data.len(), "part_size": 5 * MIB}),
        )
        .await;
    let upload: CreateUploadResponse = created.expect_body(201);
    assert_eq!(value(&created, UPLOADS_CREATED), Some(1.0));
    assert_eq!(
        value(&created, UPLOADS_CREATED_BYTES),
        Some(data.len() as f64)
    );
    assert_eq!(value(&created, UPLOADS_COMPLETED), None);
    assert_eq!(functions_of(&created.request_id()), ["upload"]);

    app.send_parts(&upload, &data, &[1, 2]).await;
    let completed = app
        .post(&path(CompleteUpload, &upload.upload_id), json!({}))
        .await;
    completed.expect(201);
    assert_eq!(value(&completed, UPLOADS_COMPLETED), Some(1.0));
    assert_eq!(
        value(&completed, UPLOADS_COMPLETED_BYTES),
        Some(data.len() as f64)
    );
    assert_eq!(functions_of(&completed.request_id()), ["merge"]);

    // Completing again answers the same file, but completes nothing.
    let again = app
        .post(&path(CompleteUpload, &upload.upload_id), json!({}))
        .await;
    again.expect(201);
    assert!(metrics_of(&again.request_id()).is_empty());
}

/// Every log line of a request carries the id the client got back in `x-request-id`, and
/// the function's name: the function's own lines through the invocation's span, and the
/// gateway's line of the request.
#[tokio::test]
async fn log_lines_carry_the_request_id_the_client_got_back() {
    let app = TestApp::new().await;
    let upload = app.create_upload("logged.bin", 10, None).await;
    app.send_parts(&upload, &[7; 10], &[1]).await;
    let completed = app
        .post(&path(CompleteUpload, &upload.upload_id), json!({}))
        .await;
    completed.expect(201);
    let id = completed.request_id();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let logs = logs_of(&id);
    let done = logs
        .iter()
        .find(|l| l["fields"]["message"] == "upload completed")
        .unwrap_or_else(|| panic!("no completion logged for {id}: {logs:?}"));
    let invocation = done["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "invocation"))
        .unwrap_or_else(|| panic!("no invocation span: {done}"));
    assert_eq!(invocation["request_id"], id.as_str());
    assert_eq!(invocation["function"], "merge");
    assert!(
        logs.iter().any(|l| l["fields"]["message"] == "request"
            && l["fields"]["request_id"] == id.as_str()
            && l["fields"]["status"] == 201),
        "no gateway line for {id}: {logs:?}"
    );
    // Another request's lines are not this one's.
    let other = app.get("/v1/me").await;
    other.expect(200);
    assert_ne!(other.request_id(), id);
    assert!(
        logs_of(&other.request_id())
            .iter()
            .all(|l| !l.to_string().contains(&id))
    );
}

/// Lines logged before any request (a function's init) carry no request id, so every line
/// carries the instance's id, random at cold start: a request's lines and its metrics name the
/// instance that served it, whose init lines name it too. The first invocation of a function
/// in an instance logs `cold start` marked `cold_start`, once; no other invocation is marked.
#[tokio::test]
async fn log_lines_lead_from_a_request_to_its_instances_init() {
    let app = TestApp::new().await;
    let upload = app.create_upload("instance.bin", 10, None).await;
    app.send_parts(&upload, &[8; 10], &[1]).await;
    let completed = app
        .post(&path(CompleteUpload, &upload.upload_id), json!({}))
        .await;
    completed.expect(201);
    let id = completed.request_id();
    let invocation_of = |line: &Value| -> Option<Value> {
        line["spans"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "invocation")
            .cloned()
    };
    let logs = logs_of(&id);
    let done = logs
        .iter()
        .find(|l| l["fields"]["message"] == "upload completed")
        .unwrap_or_else(|| panic!("no completion logged for {id}: {logs:?}"));
    let invocation = invocation_of(done).expect("an invocation span");
    let instance = invocation["instance"]
        .as_str()
        .unwrap_or_else(|| panic!("no instance on the request's lines: {done}"));
    assert_eq!(instance.len(), 16, "{instance}");
    for doc in metrics_of(&id) {
        assert_eq!(doc["instance"], instance, "{doc}");
    }

    // The init's lines, logged before any request, name the same instance.
    let all = lines();
    let init: Vec<&Value> = all
        .iter()
        .filter(|l| l["span"]["name"] == "init" && l["fields"]["message"] == "initialised")
        .collect();
    assert!(!init.is_empty(), "no init line");
    for line in &init {
        assert_eq!(line["span"]["instance"], instance, "{line}");
        assert!(line["span"]["function"].is_string(), "{line}");
        assert!(line["fields"]["init_ms"].is_u64(), "{line}");
    }

    // One cold start of merge in this instance, marked; this request is marked only if it
    // is that one.
    let cold: Vec<Value> = all
        .iter()
        .filter(|l| l["fields"]["message"] == "cold start")
        .filter_map(invocation_of)
        .filter(|s| s["function"] == "merge")
        .collect();
    let [first] = cold.as_slice() else {
        panic!("not one cold start of merge: {cold:?}");
    };
    assert_eq!(first["cold_start"], true, "{first}");
    assert_eq!(first["instance"], instance, "{first}");
    let marked = invocation.get("cold_start").is_some();
    assert_eq!(marked, first["request_id"] == id.as_str(), "{invocation}");
}

/// A transfer records the object's bytes, the time of the run that copied it and the
/// throughput, in a document naming the object, whose request id leads to the transfer's log
/// lines.
#[tokio::test]
async fn a_transfer_records_its_duration_bytes_and_throughput() {
    let app = TestApp::new().await;
    let data = test_bytes(3 * MIB + 77, 172);
    let file = app.upload("moved.bin", &data, None).await;
    app.verified(&file.file_id).await;
    let key = format!("files/{}/{}", app.user_id, file.file_id);
    let doc = eventually(10, "the transfer's metrics", || {
        let key = key.clone();
        async move {
            lines().into_iter().find(|l| {
                l["function"] == "transfer"
                    && l["object"] == key.as_str()
                    && l.get(TRANSFER_BYTES.name).is_some()
            })
        }
    })
    .await;
    for metric in [TRANSFER_BYTES, TRANSFER_DURATION, TRANSFER_THROUGHPUT] {
        assert_declared(&doc, metric.name);
    }
    assert_eq!(doc[TRANSFER_BYTES.name], data.len() as f64);
    let ms = doc[TRANSFER_DURATION.name].as_f64().unwrap();
    let rate = doc[TRANSFER_THROUGHPUT.name].as_f64().unwrap();
    assert!(ms > 0.0 && rate > 0.0, "{doc}");
    // The rate is the bytes over the time (to rounding).
    assert!(
        (rate * ms / 1000.0 - data.len() as f64).abs() < 1.0,
        "{doc}"
    );
    let request_id = doc["requestId"].as_str().unwrap();
    assert!(
        logs_of(request_id)
            .iter()
            .any(|l| l["fields"]["message"] == "verified and stored cold"
                && l.to_string().contains(&key)),
        "no transfer log line for {request_id}"
    );
}

async fn ask(app: &TestApp, data: &[u8]) -> ChallengeResponse {
    app.post(
        "/v1/fast-upload",
        json!({"name": "again.bin", "size": data.len(), "sha256": sha256_hex(data)}),
    )
    .await
    .expect_body(200)
}

async fn prove(app: &TestApp, challenge: &ChallengeResponse, proof: &str) -> Resp {
    app.post(
        &path(FastUploadProof, &challenge.challenge_id),
        json!({"proof": proof}),
    )
    .await
}

/// The refusal reason written for a request, and its count.
fn refusal(resp: &Resp) -> Option<(String, f64)> {
    let docs: Vec<Value> = metrics_of(&resp.request_id())
        .into_iter()
        .filter(|d| d.get(INSTANT_UPLOAD_REFUSALS.name).is_some())
        .collect();
    let [doc] = docs.as_slice() else {
        assert!(docs.is_empty(), "{docs:?}");
        return None;
    };
    assert_declared(doc, INSTANT_UPLOAD_REFUSALS.name);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["function", "reason"]])
    );
    Some((
        doc["reason"].as_str()?.to_string(),
        doc[INSTANT_UPLOAD_REFUSALS.name].as_f64()?,
    ))
}

/// An instant upload that stores a file counts a hit; each refusal counts once under its
/// reason, though the client sees the same `upload_required` for all of them.
#[tokio::test]
async fn instant_upload_hits_and_refusals_are_counted_by_reason() {
    let data = test_bytes(MIB + 5_000, 173);
    let owner = TestApp::new().await;
    let file = owner.upload("original.bin", &data, None).await;
    owner.verified(&file.file_id).await;
    let bob = TestApp::new().await;

    let challenge = ask(&bob, &data).await;
    let hit = prove(&bob, &challenge, &answer(&challenge, &data)).await;
    hit.expect(201);
    assert_eq!(value(&hit, INSTANT_UPLOAD_HITS), Some(1.0));
    assert_eq!(refusal(&hit), None);

    let reused = prove(&bob, &challenge, &answer(&challenge, &data)).await;
    assert_eq!(reused.expect(200)["status"], "upload_required");
    assert_eq!(refusal(&reused), Some(("no_challenge".into(), 1.0)));
    assert_eq!(value(&reused, INSTANT_UPLOAD_HITS), None);

    let challenge = ask(&bob, &data).await;
    let wrong = prove(&bob, &challenge, &"0".repeat(64)).await;
    assert_eq!(wrong.expect(200)["status"], "upload_required");
    assert_eq!(refusal(&wrong), Some(("wrong_proof".into(), 1.0)));

    let unknown = test_bytes(MIB + 5_000, 174);
    let challenge = ask(&bob, &unknown).await;
    let absent = prove(&bob, &challenge, &answer(&challenge, &unknown)).await;
    assert_eq!(absent.expect(200)["status"], "upload_required");
    assert_eq!(refusal(&absent), Some(("no_content".into(), 1.0)));
}

/// Wrong passwords count as login failures until the guessing limit answers 429, which
/// counts as a throttled login (and no further failure).
#[tokio::test]
async fn failed_logins_until_429_are_counted() {
    let app = TestApp::new().await;
    let guess = json!({"username": app.username, "password": "not the password"});
    let limit = filestore_auth::throttle::PER_ADDRESS.max;
    for _ in 0..limit {
        let failed = app.post(Login.template(), guess.clone()).await;
        failed.expect_error(401, "invalid_credentials");
        assert_eq!(value(&failed, LOGIN_FAILURES), Some(1.0));
        assert_eq!(value(&failed, LOGINS_THROTTLED), None);
        assert_eq!(functions_of(&failed.request_id()), ["auth"]);
    }
    let throttled = app.post(Login.template(), guess).await;
    throttled.expect_error(429, "too_many_attempts");
    assert_eq!(value(&throttled, LOGINS_THROTTLED), Some(1.0));
    assert_eq!(value(&throttled, LOGIN_FAILURES), None);
}

/// Each function's first invocation in the process (here: the local runner's) records one
/// cold start with the process's age then; later invocations record none.
#[tokio::test]
async fn a_functions_first_invocation_records_its_cold_start() {
    let app = TestApp::new().await;
    app.get("/v1/me").await.expect(200);
    let cold: Vec<Value> = lines()
        .into_iter()
        .filter(|l| l["function"] == "auth" && l.get(COLD_STARTS.name).is_some())
        .collect();
    let [doc] = cold.as_slice() else {
        panic!("not one cold start of auth: {cold:?}");
    };
    assert_declared(doc, COLD_STARTS.name);
    assert_declared(doc, INIT_DURATION.name);
    assert_eq!(doc[COLD_STARTS.name], 1.0);
    assert!(doc[INIT_DURATION.name].as_f64().is_some_and(|ms| ms >= 0.0));
}
