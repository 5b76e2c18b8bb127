//! Each function's IAM policy in `infra/sam/template.yaml` allows every AWS call the function
//! makes. A call its role does not allow fails on AWS only, where no emulator test would see
//! it, so here every function runs with SDK clients of its own that record each call (the
//! operation, and the table, index or bucket it names), including the URLs it presigns, which
//! act with its role's rights. The test walks every route, the transfer (a first copy and a
//! duplicate) and a janitor sweep with work of every kind, then holds the calls against the
//! function's statements both ways: every call allowed, and every grant needed by some call
//! (or by a path only a fault reaches, listed in [`UNEXERCISED`]), so roles stay least
//! privilege as the code changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use filestore_contract::api::{ChallengeResponse, CreateShareResponse, FileView};
use filestore_contract::{Function, RouteKey};
use filestore_dev::gateway::{self, Functions};
use filestore_dev::{LocalSystem, Options};
use filestore_shared::AppState;
use filestore_shared::keys::{COLD_BLOB_PREFIX, PROOF_DECOY_KEY};
use filestore_shared::storage::{DECOY_SIZE, Storage};
use filestore_transfer::{Limits, Requeue};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{
    MIB, TestApp, answer, file_in_folder, new_folder, path, s3_event, sha256_hex, sqs_batch,
    test_bytes,
};
use crate::template::Template;
use filestore_contract::domain::FileId;

/// Which of the system's stores a client talks to.
#[derive(Clone, Copy, Debug)]
enum Store {
    Table,
    Hot,
    Cold,
    TransferQueue,
}

/// One permission a function needed: an IAM action on a resource written as the template
/// writes it, and the call that needed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    function: &'static str,
    action: String,
    resource: String,
    operation: String,
}

type Seen = Arc<Mutex<BTreeSet<Need>>>;

/// Records the permissions each call of one function's client needs.
#[derive(Clone, Debug)]
struct Recorder {
    function: &'static str,
    store: Store,
    seen: Seen,
}

const TABLE: &str = "${Table.Arn}";
const HOT_OBJECTS: &str = "${HotBucket.Arn}/*";
const HOT_BUCKET: &str = "${HotBucket.Arn}";
const COLD_OBJECTS: &str = "arn:${AWS::Partition}:s3:::${ColdBucket}/*";
const COLD_BUCKET: &str = "arn:${AWS::Partition}:s3:::${ColdBucket}";
const TRANSFER_QUEUE: &str = "${TransferQueue.Arn}";

/// The IAM actions an S3 operation needs, on the objects (`true`) or the bucket.
fn s3_actions(operation: &str) -> Vec<(&'static str, bool)> {
    match operation {
        "GetObject" => vec![("s3:GetObject", true)],
        // Without s3:ListBucket, S3 answers a HEAD of a missing key with 403, not 404, and
        // "already gone" would read as a failure.
        "HeadObject" => vec![("s3:GetObject", true), ("s3:ListBucket", false)],
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
            vec![("s3:PutObject", true)]
        }
        "AbortMultipartUpload" => vec![("s3:AbortMultipartUpload", true)],
        "ListParts" => vec![("s3:ListMultipartUploadParts", true)],
        "DeleteObject" | "DeleteObjects" => vec![("s3:DeleteObject", true)],
        "ListObjectsV2" | "ListObjects" => vec![("s3:ListBucket", false)],
        "ListMultipartUploads" => vec![("s3:ListBucketMultipartUploads", false)],
        _ => vec![],
    }
}

/// The IAM actions a DynamoDB request needs, with the resource each applies to. A
/// transaction needs the action of each item it writes or reads, not one of its own.
fn dynamodb_actions(operation: &str, body: &Value) -> Vec<(String, String)> {
    let on = |action: &str, item: &Value| {
        let resource = match item["IndexName"].as_str() {
            Some(index) => format!("{TABLE}/index/{index}"),
            None => TABLE.to_string(),
        };
        (format!("dynamodb:{action}"), resource)
    };
    match operation {
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|item| item.as_object().into_iter().flatten())
            .map(|(kind, item)| {
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => panic!("a transaction item of kind {other}"),
                };
                on(action, item)
            })
            .collect(),
        _ => vec![on(operation, body)],
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    // Before signing rather than before sending: presigned URLs are signed, never sent.
    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "an unnamed operation".into());
        let needs: Vec<(String, String)> = match self.store {
            Store::Table => {
                let body = context
                    .request()
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                dynamodb_actions(&operation, &body)
            }
            Store::TransferQueue => vec![(format!("sqs:{operation}"), TRANSFER_QUEUE.into())],
            Store::Hot | Store::Cold => {
                let (objects, bucket) = match self.store {
                    Store::Hot => (HOT_OBJECTS, HOT_BUCKET),
                    _ => (COLD_OBJECTS, COLD_BUCKET),
                };
                let actions = s3_actions(&operation);
                if actions.is_empty() {
                    vec![(format!("s3:<no mapping for {operation}>"), bucket.into())]
                } else {
                    actions
                        .into_iter()
                        .map(|(a, on_objects)| {
                            (a.into(), if on_objects { objects } else { bucket }.into())
                        })
                        .collect()
                }
            }
        };
        let mut seen = self.seen.lock().unwrap();
        for (action, resource) in needs {
            seen.insert(Need {
                function: self.function,
                action,
                resource,
                operation: operation.clone(),
            });
        }
        Ok(())
    }
}

/// Grants for paths the walk cannot take without injecting a fault: (function, action, why).
const UNEXERCISED: [(&str, &str, &str); 13] = [
    (
        "merge",
        "dynamodb:DeleteItem",
        "a complete that loses the quota race to a concurrent one drops its upload",
    ),
    (
        "merge",
        "s3:DeleteObject",
        "... and the object S3 has just joined, which no File will own",
    ),
    (
        "merge",
        "s3:AbortMultipartUpload",
        "... and its multipart upload, in case S3 had not joined it",
    ),
    (
        "transfer",
        "s3:AbortMultipartUpload",
        "a copy that fails midway aborts its cold multipart upload",
    ),
    (
        "janitor",
        "sqs:SendMessage",
        "a file still unverified past its due time has its transfer re-queued",
    ),
    (
        "auth",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
    (
        "upload",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
    (
        "merge",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
    (
        "files",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
    (
        "fastupload",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
    (
        "shares",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
    (
        "folders",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
    (
        "trash",
        "secretsmanager:GetSecretValue",
        "the token key, read at cold start on AWS (locally the key is given)",
    ),
];

/// `state` with clients of its own for `function`, recording into `seen`.
fn recorded(state: &AppState, function: &'static str, seen: &Seen) -> AppState {
    let recorder = |store| Recorder {
        function,
        store,
        seen: seen.clone(),
    };
    let s3 = |storage: &Storage, store| storage.with_interceptor(recorder(store));
    let mut state = state.clone();
    state.repo = state.repo.with_interceptor(recorder(Store::Table));
    state.storage = s3(&state.storage, Store::Hot);
    state.cold = state.cold.as_ref().map(|cold| s3(cold, Store::Cold));
    state
}

/// An SQS client for `function`, recording into `seen`.
async fn recorded_sqs(
    local: &LocalSystem,
    function: &'static str,
    seen: &Seen,
) -> aws_sdk_sqs::Client {
    let sdk =
        filestore_dev::local_sdk_config(&local.endpoint_url(), &local.state.config.region).await;
    let config = aws_sdk_sqs::config::Builder::from(&sdk)
        .interceptor(Recorder {
            function,
            store: Store::TransferQueue,
            seen: seen.clone(),
        })
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Whether a statement's action or resource covers `wanted` (a trailing `*` matches the rest).
fn covers(granted: &str, wanted: &str) -> bool {
    granted == wanted
        || granted
            .strip_suffix('*')
            .is_some_and(|prefix| wanted.starts_with(prefix))
}

#[tokio::test]
async fn every_function_is_allowed_every_call_it_makes() {
    let retention = Duration::from_secs(60);
    let mut options = Options::isolated();
    options.config.hot_retention = Some(retention);
    // The test runs the transfer and the janitor itself, with their own recorded clients.
    options.run_worker = false;
    let cors = Arc::new(options.cors.clone());
    let local = LocalSystem::start(options).await.unwrap();
    let seen = Seen::default();
    // Share links point at the recording gateway, so opening one is recorded too.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mut by_function = HashMap::new();
    for key in RouteKey::ALL {
        let f = key.function();
        by_function.entry(f).or_insert_with(|| {
            let mut state = recorded(&local.state, f.name(), &seen);
            state.config.public_url = Some(format!("http://{addr}"));
            Arc::new(state)
        });
    }
    let transfer = recorded(&local.state, "transfer", &seen);
    let janitor = recorded(&local.state, "janitor", &seen);
    let states = by_function.clone();
    let server = tokio::spawn(gateway::serve(
        listener,
        Functions::each(move |f: Function| states[&f].clone()),
        cors,
    ));
    let base = format!("http://{addr}");
    let hot_bucket = local.state.config.hot_bucket.clone();
    // With no hot retention, the transfer also removes the hot copy at once.
    let mut transfer_now = transfer.clone();
    transfer_now.config.hot_retention = Some(Duration::ZERO);
    let transfer_with = |transfer: &AppState, app: &TestApp, file: &FileView, len: usize| {
        let key = format!("files/{}/{}", app.user_id, file.file_id);
        let event = s3_event(&hot_bucket, &key, len);
        let transfer = transfer.clone();
        async move {
            let response =
                filestore_transfer::handler(&transfer, sqs_batch(&event), &Default::default())
                    .await;
            assert!(response.batch_item_failures.is_empty(), "transfer of {key}");
        }
    };

    // Accounts: signup and login (in new_at), a failed login, who am I, the document.
    let owner = TestApp::new_at(&base).await;
    let other = TestApp::new_at(&base).await;
    TestApp::anonymous_at(&base)
        .post(
            "/v1/auth/login",
            json!({"username": owner.username, "password": "not the password"}),
        )
        .await
        .expect_error(401, "invalid_credentials");
    // A success gives its places in the failure counters back.
    TestApp::anonymous_at(&base)
        .post(
            "/v1/auth/login",
            json!({"username": owner.username, "password": owner.password}),
        )
        .await
        .expect(200);
    owner.get("/v1/me").await.expect(200);
    owner.get("/v1/openapi.json").await.expect(200);

    // Uploads: one completed in two parts, one looked at and aborted, one left to expire.
    let data = test_bytes(6 * MIB, 71);
    let file = owner.upload("first.bin", &data, Some(5 * MIB)).await;
    let aborted = owner.create_upload("aborted.bin", 1000, None).await;
    owner
        .send_parts(&aborted, &test_bytes(1000, 72), &[1])
        .await;
    owner.get("/v1/uploads").await.expect(200);
    owner.upload_status(&aborted.upload_id).await;
    owner
        .delete(&path(RouteKey::AbortUpload, &aborted.upload_id))
        .await
        .expect(204);
    let abandoned = owner.create_upload("abandoned.bin", 1000, None).await;
    owner
        .send_parts(&abandoned, &test_bytes(1000, 73), &[1])
        .await;

    // The transfer: a first copy, then the same bytes again as another user's file (the
    // duplicate copy is dropped), and content that will lose its last reference. The first
    // content puts back instant upload's proof decoy, which a store provisioned by other means
    // may lack.
    let cold = local.state.cold.as_ref().unwrap();
    cold.delete_object(PROOF_DECOY_KEY).await.unwrap();
    transfer_with(&transfer, &owner, &file, data.len()).await;
    assert_eq!(
        cold.object_size(PROOF_DECOY_KEY).await.unwrap(),
        Some(DECOY_SIZE)
    );
    let copy = other.upload("copy.bin", &data, None).await;
    transfer_with(&transfer, &other, &copy, data.len()).await;
    let lone = test_bytes(3000, 74);
    let lone_file = other.upload("lone.bin", &lone, None).await;
    transfer_with(&transfer_now, &other, &lone_file, lone.len()).await;
    // A copy longer than a run: here every run stops after a part, saves a checkpoint and
    // sends a continuation, which resumes it.
    let long = test_bytes(11 * MIB, 75);
    let long_file = owner.upload("long.bin", &long, Some(5 * MIB)).await;
    let key = format!("files/{}/{}", owner.user_id, long_file.file_id);
    let every_part = Limits {
        stop_at: Some(std::time::Instant::now()),
        requeue: Some(Requeue::new(
            recorded_sqs(&local, "transfer", &seen).await,
            &local.queues.transfer_queue_url,
        )),
        ..Default::default()
    };
    let mut body = s3_event(&hot_bucket, &key, long.len());
    for _ in 0..3 {
        let response = filestore_transfer::handler(&transfer, sqs_batch(&body), &every_part).await;
        assert!(response.batch_item_failures.is_empty(), "a run of {key}");
        body = serde_json::from_str(&Requeue::body(&key)).unwrap();
    }
    owner.verified(&long_file.file_id).await;

    // Files: list, look, download, rename, delete.
    let file_id = &file.file_id;
    owner.list_files().await;
    owner.file(file_id).await;
    assert!(owner.download(file_id).await == data);
    owner
        .patch(
            &path(RouteKey::RenameFile, file_id),
            json!({"name": "renamed.bin"}),
        )
        .await
        .expect(200);
    // A second file of a taken name is renamed at complete.
    owner.upload("renamed.bin", b"again", None).await;

    // Folders: create, read, list, rename and move, a path; a file moved into one.
    let docs: Value = owner
        .post("/v1/folders", json!({"name": "docs"}))
        .await
        .expect(201);
    let docs_id = docs["folder_id"].as_str().unwrap();
    let inner: Value = owner
        .post(
            "/v1/folders",
            json!({"name": "inner", "parent_id": docs_id}),
        )
        .await
        .expect(201);
    let inner_id = inner["folder_id"].as_str().unwrap();
    owner
        .get(&path(RouteKey::GetFolder, inner_id))
        .await
        .expect(200);
    owner
        .patch(
            &path(RouteKey::RenameFile, file_id),
            json!({"parent_id": docs_id}),
        )
        .await
        .expect(200);
    owner
        .get(&path(RouteKey::ListChildren, docs_id))
        .await
        .expect(200);
    owner
        .patch(
            &path(RouteKey::MoveFolder, inner_id),
            json!({"parent_id": "root", "name": "outer"}),
        )
        .await
        .expect(200);
    owner
        .get("/v1/paths?path=%2Fdocs%2Frenamed.bin")
        .await
        .expect(200);
    other
        .delete(&path(RouteKey::DeleteFile, &lone_file.file_id))
        .await
        .expect(204);

    // The trash: the lone file waits there for the janitor (its retention has passed by the
    // sweep below); the long one is listed, restored, trashed again and purged; the last
    // file the owner trashes goes when the whole trash is emptied.
    let long_id = &long_file.file_id;
    owner
        .delete(&path(RouteKey::DeleteFile, long_id))
        .await
        .expect(204);
    owner.trash().await;
    owner
        .post(&path(RouteKey::RestoreTrash, long_id), json!({}))
        .await
        .expect(200);
    owner.delete_for_good(long_id).await;

    // Folders in the trash: one trashed with a file in it, restored, trashed again and purged
    // at once; one left in the trash, which the janitor's sweep below purges.
    for (name, purge_now) in [("bin", true), ("old", false)] {
        let folder = new_folder(&owner, name, "root").await;
        let id = folder.folder_id.as_str();
        file_in_folder(&owner, "in.bin", id, b"inside").await;
        owner
            .delete(&path(RouteKey::DeleteFolder, id))
            .await
            .expect(204);
        if purge_now {
            owner
                .post(&path(RouteKey::RestoreTrash, id), json!({}))
                .await
                .expect(200);
            owner
                .delete(&path(RouteKey::DeleteFolder, id))
                .await
                .expect(204);
            owner
                .delete(&path(RouteKey::PurgeTrash, id))
                .await
                .expect(204);
        }
    }

    // Instant upload: a challenge, answered.
    let challenge: ChallengeResponse = other
        .post(
            "/v1/fast-upload",
            // Named as a file it has already: renamed.
            json!({"name": "copy.bin", "size": data.len(), "sha256": sha256_hex(&data)}),
        )
        .await
        .expect_body(200);
    other
        .post(
            &path(RouteKey::FastUploadProof, &challenge.challenge_id),
            json!({"proof": answer(&challenge, &data)}),
        )
        .await
        .expect(201);

    // Share links: create, list, open (again from the cold copy, after the sweep below).
    let share: CreateShareResponse = owner
        .post(
            &path(RouteKey::CreateShare, file_id),
            json!({"expires_in": 3600, "max_downloads": 2}),
        )
        .await
        .expect_body(201);
    owner
        .get(&path(RouteKey::ListShares, file_id))
        .await
        .expect(200);
    let open_share = || async { owner.http.get(&share.url).send().await.unwrap().status() };
    assert_eq!(open_share().await, 302);

    // A janitor sweep far enough ahead that there is work of every kind: the abandoned
    // upload has expired, hot copies are past their retention, the lone content has no
    // reference, and a cold blob nothing points to and a cold upload a stopped transfer
    // left open are past their grace.
    cold.put_object(
        &format!("{COLD_BLOB_PREFIX}orphan-{}", uuid::Uuid::new_v4()),
        b"orphan".to_vec().into(),
        None,
    )
    .await
    .unwrap();
    // A stopped transfer's upload sits at its file's cold key, so the janitor reads the
    // file's checkpoint before it aborts the upload.
    cold.create_multipart(
        &filestore_shared::keys::cold_key(&FileId::generate()),
        Some("application/octet-stream"),
    )
    .await
    .unwrap();
    let later = OffsetDateTime::now_utc() + Duration::from_secs(40 * 24 * 3600);
    let report = filestore_janitor::sweep(&janitor, later).await.unwrap();
    assert!(report.aborted_uploads >= 1, "{report:?}");
    assert!(report.collected_contents >= 1, "{report:?}");
    assert!(report.removed_hot_copies >= 1, "{report:?}");
    assert!(report.removed_orphan_blobs >= 1, "{report:?}");
    assert!(report.aborted_cold_uploads >= 1, "{report:?}");
    assert!(report.purged_trash >= 1, "{report:?}");
    assert!(report.purged_folders >= 1, "{report:?}");

    // From the cold copy now, then gone; the password changed last (it ends the tokens).
    assert_eq!(open_share().await, 302);
    owner
        .delete(&path(RouteKey::RevokeShare, &share.share_id))
        .await
        .expect(204);
    assert!(owner.download(file_id).await == data);
    owner
        .delete(&path(RouteKey::DeleteFile, file_id))
        .await
        .expect(204);
    owner
        .delete(RouteKey::EmptyTrash.template())
        .await
        .expect(204);
    owner
        .post(
            "/v1/auth/password",
            json!({"old_password": owner.password, "new_password": "another horse battery"}),
        )
        .await
        .expect(204);

    let template = Template::load();
    let seen = seen.lock().unwrap().clone();
    for need in &seen {
        println!(
            "{:<10} {:<32} {:<50} {}",
            need.function, need.action, need.resource, need.operation
        );
    }
    let mut missing = Vec::new();
    for (function, needs) in seen.iter().fold(BTreeMap::<_, Vec<_>>::new(), |mut m, n| {
        m.entry(n.function).or_default().push(n);
        m
    }) {
        let statements = template.statements(&template.function_of_crate(function));
        for need in needs {
            let allowed = statements.iter().any(|s| {
                s.actions.iter().any(|a| covers(a, &need.action))
                    && s.resources.iter().any(|r| covers(r, &need.resource))
            });
            if !allowed {
                missing.push(format!(
                    "{function}: {} on {} (for {})",
                    need.action, need.resource, need.operation
                ));
            }
        }
    }
    // Grants no call needed: more than the function needs, unless the path that needs it is
    // one this walk cannot take without a fault (listed with its reason).
    let mut unused = Vec::new();
    for function in template.functions() {
        let name = template.crate_of(&function);
        for statement in template.statements(&function) {
            for action in &statement.actions {
                let used = seen.iter().any(|n| {
                    n.function == name
                        && covers(action, &n.action)
                        && statement.resources.iter().any(|r| covers(r, &n.resource))
                });
                let excused = UNEXERCISED
                    .iter()
                    .any(|(f, a, _)| *f == name && a == action);
                if !used && !excused {
                    unused.push(format!("{name}: {action} on {:?}", statement.resources));
                }
            }
        }
    }
    let functions: BTreeSet<&str> = seen.iter().map(|n| n.function).collect();
    assert_eq!(
        functions.len(),
        by_function.len() + 2,
        "every function made calls: {functions:?}"
    );
    assert!(
        missing.is_empty(),
        "calls the template's policies do not allow:\n{}",
        missing.join("\n")
    );
    assert!(
        unused.is_empty(),
        "grants no call needed (remove them, or list the path in UNEXERCISED):\n{}",
        unused.join("\n")
    );
    server.abort();
    local.stop().await;
}
