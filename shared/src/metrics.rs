//! Metrics: counters through the `metrics` facade, written as CloudWatch Embedded Metric
//! Format (EMF) lines on stdout, which CloudWatch Logs turns into metrics of the namespace
//! [`NAMESPACE`] with the function's name as the dimension `function`. A Lambda installs the
//! recorder once at cold start ([`init`]) and writes what it counted after each invocation
//! ([`flush`]); where none is installed (the local runner, the tests) counting records
//! nothing. Every metric's name is a constant here.

use anyhow::anyhow;

/// The CloudWatch namespace of every filestore metric.
pub const NAMESPACE: &str = "filestore";

/// Transfers the janitor asked for again: files still unverified past their due time (their
/// messages dead-lettered while the cold store was down, say).
pub const TRANSFERS_REQUEUED: &str = "TransfersRequeued";

/// Transfer messages that failed on their last receive: SQS moves each to the dead-letter
/// queue, and the janitor re-queues its file once it is due.
pub const TRANSFERS_DEAD_LETTERED: &str = "TransfersDeadLettered";

/// The installed recorder, to flush.
pub type Recorder = &'static metrics_cloudwatch_embedded::Collector;

/// Installs the EMF recorder for the function `function`, once per process.
///
/// # Errors
/// A recorder is already installed.
pub fn init(function: &'static str) -> anyhow::Result<Recorder> {
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension("function", function)
        .init()
        .map_err(|e| anyhow!("installing the metrics recorder: {e}"))
}

/// Writes what was counted since the last flush as one EMF line on stdout.
pub fn flush(recorder: Recorder) {
    if let Err(e) = recorder.flush(std::io::stdout()) {
        tracing::warn!(error = %e, "could not write the metrics");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A count becomes an EMF document CloudWatch reads: the namespace, the function as the
    /// dimension, the metric declared and its value beside it.
    #[test]
    fn counts_are_written_as_embedded_metrics() {
        let recorder = init("janitor").unwrap();
        metrics::counter!(TRANSFERS_REQUEUED).increment(2);
        metrics::counter!(TRANSFERS_DEAD_LETTERED).increment(1);
        let mut out = Vec::new();
        recorder.flush(&mut out).unwrap();
        let emf: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let declared = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"][0][0], "function");
        let names: Vec<&str> = declared["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert!(names.contains(&TRANSFERS_REQUEUED), "{emf}");
        assert_eq!(emf["function"], "janitor");
        assert_eq!(emf[TRANSFERS_REQUEUED], 2);
        assert_eq!(emf[TRANSFERS_DEAD_LETTERED], 1);
    }
}
