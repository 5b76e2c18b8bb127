//! [`Output`]: what goes where. Results go to stdout (text for people, or one JSON document
//! with `--json`); notes go to stderr.

use std::io::Write;

use serde::Serialize;

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
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

    /// One line on stderr, for things worth knowing that are not the result.
    pub fn note(&self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
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
}
