//! [`Output`]: what goes where. Results go to stdout (text for people, or one JSON document
//! with `--json`); notes and progress go to stderr, progress only when stderr is a terminal
//! and the output is not JSON.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

pub struct Output {
    json: bool,
    progress: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            progress: !json && std::io::stderr().is_terminal(),
        }
    }

    /// Prints the command's result: `value` as JSON with `--json`, else `text()` (if any).
    pub fn result<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        let out = if self.json {
            serde_json::to_string_pretty(value).expect("results serialize")
        } else {
            text()
        };
        if out.is_empty() {
            return;
        }
        // A closed stdout (`filestore ls | head`) is not an error worth reporting.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{out}");
    }

    /// One line of a result for people, printed as it happens (nothing with `--json`, whose
    /// document comes at the end).
    pub fn line(&self, text: &str) {
        if !self.json {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }

    /// One line on stderr, for things worth knowing that are not the result.
    pub fn note(&self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// A byte progress bar (bytes, rate, ETA) on stderr, hidden when progress is off.
    pub fn bar(&self, total: u64, label: &str) -> ProgressBar {
        let target = if self.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

/// A list for people: one line per item, or `empty` when there are none.
pub fn lines<T>(items: &[T], empty: &str, line: impl FnMut(&T) -> String) -> String {
    if items.is_empty() {
        return empty.to_string();
    }
    items.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// Sizes for people: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A rate for people, in MiB/s (`-` when no time passed).
pub fn human_rate(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_string();
    }
    format!("{:.1} MiB/s", bytes as f64 / seconds / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12 << 20), "12.0 MiB");
        assert_eq!(human_bytes(10 << 30), "10.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rates_are_mib_per_second() {
        assert_eq!(human_rate(10 << 20, 2.0), "5.0 MiB/s");
        assert_eq!(human_rate(1, 0.0), "-");
    }
}
