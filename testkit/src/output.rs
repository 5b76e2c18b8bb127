//! What the functions write, captured: their log lines, formatted as Lambda's JSON log
//! format writes them (span fields included), and their EMF metric lines, which on Lambda go
//! to stdout. The harness installs the capture before the first request of a test binary
//! ([`capture`]); tests then read the lines of one request by its id.

use std::sync::{Mutex, Once};

use serde_json::Value;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn keep(text: &str) {
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
}

/// One log event as the formatter writes it, kept when done.
struct Event(Vec<u8>);

impl std::io::Write for Event {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        keep(&String::from_utf8_lossy(&self.0));
    }
}

/// Captures the process's log and metric lines from now on (once; later calls do nothing).
pub fn capture() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        filestore_shared::metrics::write_lines_to(keep);
        // As `lambda_runtime::tracing::init_default_subscriber` with the JSON log format.
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
            )
            .with_writer(|| Event(Vec::new()))
            .try_init();
    });
}

/// Every captured line that is JSON.
pub fn lines() -> Vec<Value> {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether a line is an EMF document.
pub fn is_metrics(line: &Value) -> bool {
    line.get("_aws").is_some()
}

/// The EMF documents written for the request `request_id`.
pub fn metrics_of(request_id: &str) -> Vec<Value> {
    lines()
        .into_iter()
        .filter(|l| is_metrics(l) && l["requestId"] == request_id)
        .collect()
}

/// The value `metric` has in the EMF documents of `request_id` (`None` if none has it),
/// after checking that each document declares what it carries.
pub fn metric_of(request_id: &str, metric: &str) -> Option<Value> {
    let docs: Vec<Value> = metrics_of(request_id)
        .into_iter()
        .filter(|d| d.get(metric).is_some())
        .collect();
    assert!(docs.len() <= 1, "{metric} written twice: {docs:?}");
    let doc = docs.into_iter().next()?;
    assert_declared(&doc, metric);
    Some(doc[metric].clone())
}

/// Asserts that an EMF document declares `metric` in the namespace `filestore`, with each of
/// its dimensions present as a value.
pub fn assert_declared(doc: &Value, metric: &str) {
    let declared = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(declared["Namespace"], "filestore", "{doc}");
    assert!(
        declared["Metrics"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["Name"] == metric)),
        "{metric} not declared: {doc}"
    );
    for dimension in declared["Dimensions"][0].as_array().into_iter().flatten() {
        let name = dimension.as_str().unwrap_or_default();
        assert!(
            doc[name].is_string(),
            "dimension {name} has no value: {doc}"
        );
    }
}

/// The log lines (not metrics) that name `request_id`: in a span's fields, or their own.
pub fn logs_of(request_id: &str) -> Vec<Value> {
    lines()
        .into_iter()
        .filter(|l| !is_metrics(l) && names(l, request_id))
        .collect()
}

fn names(value: &Value, request_id: &str) -> bool {
    match value {
        Value::String(s) => s == request_id,
        Value::Array(items) => items.iter().any(|v| names(v, request_id)),
        Value::Object(map) => map.values().any(|v| names(v, request_id)),
        _ => false,
    }
}
