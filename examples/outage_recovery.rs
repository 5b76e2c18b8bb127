//! Benchmark: how long after a cold-store outage every file is verified again.
//!
//! Starts a local system of its own (free ports, nothing kept), stops its cold-store
//! emulator, uploads FILES files of 100 kB, waits until every transfer message is in the
//! dead-letter queue (the queue gave up on them), starts the cold store again and times
//! until every file is verified: the janitor finds them past their due time and re-queues
//! their transfers. The system runs its janitor on its own schedule (JANITOR_SECS, the
//! runner's default 300) with the runner's retry defaults (60 s after creation, doubling to
//! 600 s), so the figure is what an operator of the local system would see.
//!
//! `cargo run --example outage_recovery -- [FILES] [JANITOR_SECS]` (defaults 20 and 300).

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use filestore_dev::{LocalSystem, Options};
use filestore_testkit::{TestApp, test_bytes};

async fn dead_lettered(local: &LocalSystem) -> u64 {
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let out = sqs
        .get_queue_attributes()
        .queue_url(&local.queues.dead_letter_queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("the dead-letter queue's depth");
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(20, |a| a.parse().expect("FILES"));
    let janitor_secs: u64 = args
        .next()
        .map_or(300, |a| a.parse().expect("JANITOR_SECS"));

    let mut options = Options::isolated();
    options.janitor_interval = Duration::from_secs(janitor_secs);
    let mut local = LocalSystem::start(options).await.expect("the local system");
    local.stop_cold_store().await;
    let app = TestApp::new_at(&local.base_url()).await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..files {
        let data = test_bytes(100_000, 7000 + i as u64);
        ids.push(app.upload(&format!("f{i}.bin"), &data, None).await.file_id);
    }
    let uploaded = started.elapsed();
    while dead_lettered(&local).await < files as u64 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let parked = started.elapsed();
    local
        .start_cold_store()
        .await
        .expect("the cold store again");
    let back = Instant::now();
    let mut left = ids.clone();
    while !left.is_empty() {
        let mut still = Vec::new();
        for id in left {
            if !app.file(&id).await.verified {
                still.push(id);
            }
        }
        left = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let recovered = back.elapsed();
    println!(
        "{files} files of 100 kB, janitor every {janitor_secs} s: uploaded in {:.1} s, all \
         dead-lettered {:.1} s after the first upload; cold store back at {:.1} s; every file \
         verified {:.1} s after the cold store came back",
        uploaded.as_secs_f64(),
        parked.as_secs_f64(),
        started.elapsed().as_secs_f64() - recovered.as_secs_f64(),
        recovered.as_secs_f64()
    );
    local.stop().await;
}
