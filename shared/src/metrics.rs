//! Metrics and the request id of every log line, per invocation.
//!
//! A function's init runs inside [`init`] and its work inside [`invocation`]: tracing spans
//! carrying `function` and this execution environment's [`instance_id`] (random, made at cold
//! start), the invocation's also `request_id` and, on the first invocation, `cold_start`, so
//! every log line of the function names both, and a request's lines lead to the init lines of
//! the instance that served it (the JSON log format writes the span's fields). The
//! invocation's span comes with a scope that collects what the code under it records with
//! [`add`] and [`add_by`]. When the invocation ends the figures are written as CloudWatch
//! Embedded Metric Format (EMF) documents, one JSON line per set of dimensions, on stdout,
//! which Lambda's log pipeline turns into metrics of the [`namespace`] (`filestore`, or the
//! one `FILESTORE_METRICS_NAMESPACE` names: deployed, `filestore/<stack>`) with the
//! dimension `function` (and `reason` where a metric names one). Each document also carries
//! `requestId` and `instance`, so a figure leads to the log lines of the request that made it.
//!
//! Why not the `metrics` facade with a CloudWatch recorder: its recorder is one per process,
//! and the local runner serves every function from one process, many requests at once; a
//! scope per invocation keeps each request's figures (and its request id) apart, on Lambda
//! and locally alike. Outside an invocation (a handler called directly by a test) nothing
//! is recorded.
//!
//! Counts and bytes ([`Unit::Count`], [`Unit::Bytes`]) add up within an invocation; times
//! and rates are samples, each kept (EMF takes a list of values).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tracing::Instrument;

/// The CloudWatch namespace of every filestore metric, unless the configuration names one
/// ([`set_namespace`]; deployed, the template names it `filestore/<stack>`).
pub const NAMESPACE: &str = "filestore";

static CONFIGURED_NAMESPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Writes the process's metrics under `namespace` from now on (`FILESTORE_METRICS_NAMESPACE`,
/// set once at cold start; later calls change nothing).
pub fn set_namespace(namespace: &str) {
    let _ = CONFIGURED_NAMESPACE.set(namespace.to_string());
}

/// The namespace metrics are written under.
pub fn namespace() -> &'static str {
    CONFIGURED_NAMESPACE.get().map_or(NAMESPACE, String::as_str)
}

/// The unit CloudWatch stores a metric in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
    BytesPerSecond,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
            Self::BytesPerSecond => "Bytes/Second",
        }
    }

    /// Whether values add up (a total) rather than stand each on its own (a sample).
    fn adds_up(self) -> bool {
        matches!(self, Self::Count | Self::Bytes)
    }
}

/// A metric: its name in CloudWatch and its unit. Every metric is a constant here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
}

const fn metric(name: &'static str, unit: Unit) -> Metric {
    Metric { name, unit }
}

/// Uploads created (`POST /v1/uploads` answered 201).
pub const UPLOADS_CREATED: Metric = metric("UploadsCreated", Unit::Count);
/// Bytes the created uploads declared.
pub const UPLOADS_CREATED_BYTES: Metric = metric("UploadsCreatedBytes", Unit::Bytes);
/// Uploads completed into files (`POST /v1/uploads/{id}/complete` answered 201 by this call).
pub const UPLOADS_COMPLETED: Metric = metric("UploadsCompleted", Unit::Count);
/// Bytes of the completed uploads.
pub const UPLOADS_COMPLETED_BYTES: Metric = metric("UploadsCompletedBytes", Unit::Bytes);
/// Files stored by instant upload, no bytes sent.
pub const INSTANT_UPLOAD_HITS: Metric = metric("InstantUploadHits", Unit::Count);
/// Instant uploads refused, by `reason` (the client always sees the same answer).
pub const INSTANT_UPLOAD_REFUSALS: Metric = metric("InstantUploadRefusals", Unit::Count);
/// Logins with a wrong username or password (and password changes with a wrong old one).
pub const LOGIN_FAILURES: Metric = metric("LoginFailures", Unit::Count);
/// Password checks refused with 429: the guessing limits at work.
pub const LOGINS_THROTTLED: Metric = metric("LoginsThrottled", Unit::Count);
/// Signups refused with 429 (too many from one address).
pub const SIGNUPS_THROTTLED: Metric = metric("SignupsThrottled", Unit::Count);
/// Time of the run that finished an object's verified cold copy.
pub const TRANSFER_DURATION: Metric = metric("TransferDuration", Unit::Milliseconds);
/// Bytes of each object given a verified cold copy.
pub const TRANSFER_BYTES: Metric = metric("TransferBytes", Unit::Bytes);
/// Bytes per second of a cold copy made in one run.
pub const TRANSFER_THROUGHPUT: Metric = metric("TransferThroughput", Unit::BytesPerSecond);
/// Copies refused because the bytes read or stored did not match the hot object's hashes.
pub const TRANSFER_VERIFICATION_FAILURES: Metric =
    metric("TransferVerificationFailures", Unit::Count);
/// Transfer messages that failed on their last receive: SQS moves each to the dead-letter
/// queue, and the janitor re-queues its file once it is due.
pub const TRANSFERS_DEAD_LETTERED: Metric = metric("TransfersDeadLettered", Unit::Count);
/// Transfers the janitor asked for again: files still unverified past their due time.
pub const TRANSFERS_REQUEUED: Metric = metric("TransfersRequeued", Unit::Count);
/// Expired uploads the janitor aborted, per sweep.
pub const UPLOADS_EXPIRED: Metric = metric("UploadsExpired", Unit::Count);
/// Trash entries the janitor purged at the end of their retention, per sweep.
pub const TRASH_PURGED: Metric = metric("TrashPurged", Unit::Count);
/// An execution environment's first invocation (once per process and function).
pub const COLD_STARTS: Metric = metric("ColdStarts", Unit::Count);
/// From the process's start to its first invocation: the init its first caller waited for.
pub const INIT_DURATION: Metric = metric("InitDuration", Unit::Milliseconds);

/// Every metric, with the function that writes it (its `function` dimension; `None`: every
/// function).
pub const ALL: [(Metric, Option<&str>); 19] = [
    (UPLOADS_CREATED, Some("upload")),
    (UPLOADS_CREATED_BYTES, Some("upload")),
    (UPLOADS_COMPLETED, Some("merge")),
    (UPLOADS_COMPLETED_BYTES, Some("merge")),
    (INSTANT_UPLOAD_HITS, Some("fastupload")),
    (INSTANT_UPLOAD_REFUSALS, Some("fastupload")),
    (LOGIN_FAILURES, Some("auth")),
    (LOGINS_THROTTLED, Some("auth")),
    (SIGNUPS_THROTTLED, Some("auth")),
    (TRANSFER_DURATION, Some("transfer")),
    (TRANSFER_BYTES, Some("transfer")),
    (TRANSFER_THROUGHPUT, Some("transfer")),
    (TRANSFER_VERIFICATION_FAILURES, Some("transfer")),
    (TRANSFERS_DEAD_LETTERED, Some("transfer")),
    (TRANSFERS_REQUEUED, Some("janitor")),
    (UPLOADS_EXPIRED, Some("janitor")),
    (TRASH_PURGED, Some("janitor")),
    (COLD_STARTS, None),
    (INIT_DURATION, None),
];

/// Dimension values of one EMF document beyond `function`: none, or one `(name, value)`.
type Extra = Option<(&'static str, String)>;

/// What one invocation recorded, by extra dimension, then by metric.
#[derive(Default)]
struct Figures(BTreeMap<Extra, BTreeMap<&'static str, (Unit, Vec<f64>)>>);

impl Figures {
    fn add(&mut self, extra: Extra, metric: Metric, value: f64) {
        let (_, values) = self
            .0
            .entry(extra)
            .or_default()
            .entry(metric.name)
            .or_insert((metric.unit, Vec::new()));
        match values.first_mut() {
            Some(total) if metric.unit.adds_up() => *total += value,
            _ => values.push(value),
        }
    }
}

/// The invocation (or item of one) whose figures are being collected.
struct Scope {
    function: &'static str,
    request_id: String,
    /// Properties written beside the figures (the object of a transfer).
    properties: Vec<(&'static str, String)>,
    figures: Mutex<Figures>,
}

impl Scope {
    /// The EMF documents of what was recorded: one per set of dimensions.
    fn documents(&self, timestamp_ms: u64) -> Vec<Value> {
        let figures = std::mem::take(&mut *self.figures.lock().unwrap_or_else(|e| e.into_inner()));
        figures
            .0
            .into_iter()
            .map(|(extra, metrics)| {
                let mut dimensions = vec!["function"];
                let mut doc = Map::new();
                doc.insert("function".into(), self.function.into());
                if let Some((name, value)) = extra {
                    dimensions.push(name);
                    doc.insert(name.into(), value.into());
                }
                doc.insert("requestId".into(), self.request_id.clone().into());
                doc.insert("instance".into(), instance_id().into());
                for (name, value) in &self.properties {
                    doc.insert((*name).into(), value.clone().into());
                }
                let mut declared = Vec::new();
                for (name, (unit, values)) in metrics {
                    declared.push(json!({"Name": name, "Unit": unit.as_str()}));
                    let value = match values.as_slice() {
                        [one] => json!(one),
                        many => json!(many),
                    };
                    doc.insert(name.into(), value);
                }
                doc.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace(),
                            "Dimensions": [dimensions],
                            "Metrics": declared,
                        }],
                    }),
                );
                Value::Object(doc)
            })
            .collect()
    }

    fn write(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        for doc in self.documents(u64::try_from(now).unwrap_or(u64::MAX)) {
            write_line(&doc.to_string());
        }
    }
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// Where EMF lines go: stdout unless [`write_lines_to`] said otherwise.
type Sink = Box<dyn Fn(&str) + Send + Sync>;
static SINK: OnceLock<Sink> = OnceLock::new();

/// Sends every EMF line to `sink` instead of stdout, for the life of the process (a test
/// harness reading what the functions emit). Only the first call counts.
pub fn write_lines_to(sink: impl Fn(&str) + Send + Sync + 'static) {
    let _ = SINK.set(Box::new(sink));
}

fn write_line(line: &str) {
    match SINK.get() {
        Some(sink) => sink(line),
        None => {
            use std::io::Write;
            // One write of the whole line, so lines of concurrent invocations never mix.
            let _ = std::io::stdout()
                .lock()
                .write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// This execution environment's id: random, made on first use (at cold start) and the same
/// for the life of the process. Lines logged before any request (the init's) have no request
/// id; this id is on those and on every request's lines, so an operator can go from a request
/// to its instance's init. On Lambda a process is one function's environment; the local
/// runner is one process for all.
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// Runs a function's init (`work`: configuration, clients, connections) in a span naming
/// `function` and [`instance_id`], so the lines it logs join the requests of this instance,
/// then logs how long it took (`initialised`, `init_ms`).
pub async fn init<F: Future>(function: &'static str, work: F) -> F::Output {
    let span = tracing::info_span!("init", function, instance = instance_id());
    let started = std::time::Instant::now();
    let output = Box::pin(work.instrument(span.clone())).await;
    span.in_scope(|| {
        tracing::info!(
            init_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "initialised"
        );
    });
    output
}

/// Runs `work` as one invocation of `function` with the id `request_id` (Lambda's
/// `aws_request_id`, or API Gateway's request id for an HTTP request): its log lines carry
/// both and the [`instance_id`], and what it records is written when it ends. The first
/// invocation of `function` in the process also records [`COLD_STARTS`] and
/// [`INIT_DURATION`], and its lines carry `cold_start: true`.
pub async fn invocation<F: Future>(function: &'static str, request_id: &str, work: F) -> F::Output {
    let scope = Arc::new(Scope {
        function,
        request_id: request_id.to_string(),
        properties: Vec::new(),
        figures: Mutex::default(),
    });
    let span = tracing::info_span!(
        "invocation",
        function,
        request_id,
        instance = instance_id(),
        cold_start = tracing::field::Empty
    );
    if first_invocation_of(function) {
        span.record("cold_start", true);
        let init = process_age_ms();
        let mut figures = scope.figures.lock().unwrap_or_else(|e| e.into_inner());
        figures.add(None, COLD_STARTS, 1.0);
        if let Some(init) = init {
            figures.add(None, INIT_DURATION, init);
        }
        // A line whatever the work logs: the join from this request to the instance's init.
        span.in_scope(|| tracing::info!(init_ms = init, "cold start"));
    }
    // Boxed: the work is a function's whole future, too deep to nest on the stack again.
    let output = SCOPE
        .scope(scope.clone(), Box::pin(work.instrument(span)))
        .await;
    scope.write();
    output
}

/// Runs `work` (inside an invocation) with figures of its own, written when it ends with
/// `property` beside them: one of several items an invocation handles (an object of a
/// transfer batch), so each item's figures stay its own.
pub async fn item<F: Future>(property: (&'static str, String), work: F) -> F::Output {
    let Ok(scope) = SCOPE.try_with(|outer| {
        Arc::new(Scope {
            function: outer.function,
            request_id: outer.request_id.clone(),
            properties: vec![property],
            figures: Mutex::default(),
        })
    }) else {
        return work.await;
    };
    let output = SCOPE.scope(scope.clone(), Box::pin(work)).await;
    scope.write();
    output
}

/// Records `value` of `metric` in the current invocation.
pub fn add(metric: Metric, value: f64) {
    record(None, metric, value);
}

/// Records `value` of `metric` under a further dimension (`("reason", "expired")`, say).
pub fn add_by(metric: Metric, dimension: (&'static str, &str), value: f64) {
    record(Some((dimension.0, dimension.1.to_string())), metric, value);
}

fn record(extra: Extra, metric: Metric, value: f64) {
    let _ = SCOPE.try_with(|scope| {
        scope
            .figures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(extra, metric, value);
    });
}

/// Whether this is the first invocation of `function` in this process. Deployed, a process
/// is one function's execution environment; the local runner holds them all.
fn first_invocation_of(function: &'static str) -> bool {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    SEEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(function)
}

/// Milliseconds since this process started, from `/proc` (Linux, as Lambda is): its start
/// time in clock ticks since boot against the uptime, both to 10 ms. `None` elsewhere.
fn process_age_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    process_age_from(&stat, &uptime)
}

/// Clock ticks per second in `/proc`'s figures: `USER_HZ`, 100 on every Linux Lambda runs.
const USER_HZ: f64 = 100.0;

fn process_age_from(stat: &str, uptime: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces; the fields after it are plain. Start time
    // is field 22, the 20th after the name.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let started_ticks: f64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let up_secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    Some(((up_secs - started_ticks / USER_HZ) * 1000.0).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents_of(scope: &Scope) -> Vec<Value> {
        scope.documents(1)
    }

    /// Figures become EMF documents CloudWatch reads: the namespace, `function` (and a
    /// reason) as dimensions, each metric declared with its unit and its value beside it;
    /// counts add up, samples are kept each.
    #[test]
    fn figures_are_written_as_embedded_metrics() {
        let scope = Scope {
            function: "transfer",
            request_id: "req-1".into(),
            properties: vec![("object", "files/a".into())],
            figures: Mutex::default(),
        };
        {
            let mut figures = scope.figures.lock().unwrap();
            figures.add(None, TRANSFER_BYTES, 10.0);
            figures.add(None, TRANSFER_BYTES, 5.0);
            figures.add(None, TRANSFER_DURATION, 3.0);
            figures.add(None, TRANSFER_DURATION, 4.0);
            figures.add(
                Some(("reason", "expired".into())),
                INSTANT_UPLOAD_REFUSALS,
                1.0,
            );
        }
        let docs = documents_of(&scope);
        assert_eq!(docs.len(), 2, "{docs:?}");
        let plain = &docs[0];
        let declared = &plain["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"], json!([["function"]]));
        assert_eq!(
            declared["Metrics"],
            json!([
                {"Name": "TransferBytes", "Unit": "Bytes"},
                {"Name": "TransferDuration", "Unit": "Milliseconds"}
            ])
        );
        assert_eq!(plain["function"], "transfer");
        assert_eq!(plain["requestId"], "req-1");
        assert_eq!(plain["object"], "files/a");
        assert_eq!(plain["TransferBytes"], 15.0);
        assert_eq!(plain["TransferDuration"], json!([3.0, 4.0]));
        let by_reason = &docs[1];
        assert_eq!(
            by_reason["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "reason"]])
        );
        assert_eq!(by_reason["reason"], "expired");
        assert_eq!(by_reason["InstantUploadRefusals"], 1.0);
        assert!(documents_of(&scope).is_empty(), "written once");
    }

    /// A process's age comes from its start time in `/proc/self/stat` against the uptime,
    /// whatever its command name holds.
    #[test]
    fn process_age_reads_proc() {
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 500 19 20";
        assert_eq!(process_age_from(stat, "7.50 1.00\n"), Some(2500.0));
        assert_eq!(process_age_from("garbage", "7.5"), None);
        assert!(process_age_ms().is_some_and(|ms| ms >= 0.0));
    }
}
