//! Benchmark: does a wrong instant-upload proof answer faster when the content is not stored?
//! The contract says a failed proof is indistinguishable from "not stored"; this measures the
//! side channel an attacker would use.
//!
//! One user stores content and waits until it is verified; another user (a fresh one every
//! 60 pairs, within the 120 challenges a user gets per hour) then sends pairs of wrong proofs, one for that stored content and one for unknown content of the same size,
//! interleaved (the order inside each pair alternates, so drift on a noisy machine hits both
//! sides alike). Prints how often the stored side was slower, and the medians. With no
//! channel the sign count sits near half the pairs (a binomial at p = 0.5: 13..27 of 40 is the
//! 99 % band); a real difference pushes it to one end.
//!
//! `cargo run --example proof_timing -- [PAIRS] [SIZE_BYTES]` (defaults 40 and 2 MiB).

use std::time::{Duration, Instant};

use filestore_contract::RouteKey;
use filestore_contract::api::ChallengeResponse;
use filestore_testkit::{TestApp, path, sha256_hex, test_bytes};
use serde_json::json;

async fn ask(app: &TestApp, size: usize, sha256: &str) -> ChallengeResponse {
    app.post(
        RouteKey::FastUpload.template(),
        json!({"name": "guess.bin", "size": size, "sha256": sha256}),
    )
    .await
    .expect_body(200)
}

/// Times one wrong proof (the challenge itself is not timed).
async fn wrong_proof(app: &TestApp, size: usize, sha256: &str) -> Duration {
    let challenge = ask(app, size, sha256).await;
    let wrong = sha256_hex(challenge.nonce.as_bytes());
    let started = Instant::now();
    let resp = app
        .post(
            &path(RouteKey::FastUploadProof, &challenge.challenge_id),
            json!({"proof": wrong}),
        )
        .await;
    let took = started.elapsed();
    resp.expect(200);
    took
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let pairs: usize = args.next().map_or(40, |a| a.parse().expect("PAIRS"));
    let size: usize = args
        .next()
        .map_or(2 << 20, |a| a.parse().expect("SIZE_BYTES"));

    let owner = TestApp::new().await;
    let data = test_bytes(size, 0x5eed);
    let stored = sha256_hex(&data);
    let file = owner.upload("stored.bin", &data, None).await;
    owner.verified(&file.file_id).await;
    eprintln!("stored {size} bytes, verified; {pairs} interleaved pairs of wrong proofs");

    // A user gets 120 challenges an hour; each pair takes two.
    let mut attacker = TestApp::new().await;
    let (mut stored_ms, mut unknown_ms, mut stored_slower) = (Vec::new(), Vec::new(), 0);
    let mut diffs = Vec::new();
    for i in 0..pairs {
        if i > 0 && i % 60 == 0 {
            attacker = TestApp::new().await;
        }
        let unknown = sha256_hex(format!("not stored {i}").as_bytes());
        let (s, u) = if i.is_multiple_of(2) {
            let s = wrong_proof(&attacker, size, &stored).await;
            (s, wrong_proof(&attacker, size, &unknown).await)
        } else {
            let u = wrong_proof(&attacker, size, &unknown).await;
            (wrong_proof(&attacker, size, &stored).await, u)
        };
        stored_slower += usize::from(s > u);
        diffs.push(ms(s) - ms(u));
        stored_ms.push(ms(s));
        unknown_ms.push(ms(u));
    }
    println!("wrong proofs, {pairs} interleaved pairs, content {size} bytes");
    println!("  stored content slower in {stored_slower} of {pairs} pairs");
    println!(
        "  median: stored {:.1} ms, unknown (baseline) {:.1} ms, paired difference {:+.1} ms",
        median(stored_ms),
        median(unknown_ms),
        median(diffs)
    );
}
