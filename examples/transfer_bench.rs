//! Benchmark: the transfer's hashed and checked hot -> cold copy against a plain streaming
//! copy between the same two local endpoints, same object, same part size. Prints throughput,
//! the process's CPU time and its peak RSS for each (Linux: the peak is reset between runs
//! via `clear_refs`).
//!
//! Then the shape of the largest objects (cold parts of 512 MiB), streamed as read and, for
//! contrast, held whole.
//!
//! `cargo run --release --example transfer_bench -- [SIZE_MIB]` (default 2048).

use std::time::Instant;

use anyhow::Context;
use filestore_dev::{LocalSystem, Options};
use filestore_shared::storage::{Joined, Storage};
use filestore_transfer::{COLD_PART_SIZE, CopyJob, Place, Progress, STREAM_PARTS_OVER, Tuning};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) this process has used; /proc counts in USER_HZ, 100 on Linux.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Writes `size` pseudo-random bytes to `key`, in parts of `part_size`.
async fn put_object(store: &Storage, key: &str, size: u64, part_size: u64) -> anyhow::Result<()> {
    let id = store.create_multipart(key, None).await?;
    let mut parts = Vec::new();
    let (mut sent, mut n, mut seed) = (0u64, 1, 0x9e37_79b9_7f4a_7c15u64);
    while sent < size {
        let len = part_size.min(size - sent) as usize;
        let mut buf = vec![0u8; len];
        for chunk in buf.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        parts.push(store.upload_part(key, &id, n, buf.into(), None).await?);
        sent += len as u64;
        n += 1;
    }
    joined(store.complete_multipart(key, &id, &parts).await?)
}

fn joined(joined: Joined) -> anyhow::Result<()> {
    match joined {
        Joined::Done => Ok(()),
        refused => anyhow::bail!("CompleteMultipartUpload refused: {refused:?}"),
    }
}

/// The baseline: stream GetObject into a multipart upload, no hashing, one part at a time.
async fn plain_copy(hot: &Storage, cold: &Storage, from: &str, to: &str) -> anyhow::Result<u64> {
    let mut body = hot.read(from, 0).await?.context("no object to copy")?.body;
    let id = cold.create_multipart(to, None).await?;
    let (mut buf, mut parts, mut n, mut total) = (Vec::new(), Vec::new(), 1, 0u64);
    loop {
        let chunk = body.next().await?;
        if let Some(c) = &chunk {
            buf.extend_from_slice(c);
            total += c.len() as u64;
        }
        if buf.len() as u64 >= COLD_PART_SIZE || (chunk.is_none() && !buf.is_empty()) {
            let part = std::mem::take(&mut buf).into();
            parts.push(cold.upload_part(to, &id, n, part, None).await?);
            n += 1;
        }
        if chunk.is_none() {
            break;
        }
    }
    joined(cold.complete_multipart(to, &id, &parts).await?)?;
    Ok(total)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2048);
    let size = mib * 1024 * 1024;
    let mut options = Options::isolated();
    options.run_worker = false;
    let system = LocalSystem::start(options).await?;
    let hot = &system.state.storage;
    let cold = system.state.cold.as_ref().expect("cold store");
    println!(
        "object: {mib} MiB; parts of {} MiB; 2 local emulator endpoints",
        COLD_PART_SIZE >> 20
    );
    put_object(hot, "bench/object", size, COLD_PART_SIZE).await?;

    reset_peak();
    let (started, cpu) = (Instant::now(), cpu_secs());
    let job = CopyJob::new(
        Place {
            store: hot,
            key: "bench/object",
        },
        Place {
            store: cold,
            key: "bench/hashed",
        },
        size,
    );
    let Progress::Done(copied) = job.run().await? else {
        anyhow::bail!("a copy with no time limit stopped");
    };
    let secs = started.elapsed().as_secs_f64();
    println!(
        "transfer (sha256+sha1 on a hashing thread, Content-MD5, 2 parts in flight, hot ETag and cold copy checked): {:.1} MB/s, {secs:.1} s, process CPU {:.1} s, peak RSS {:.0} MiB",
        copied.size as f64 / secs / 1e6,
        cpu_secs() - cpu,
        peak_rss_mib()
    );

    reset_peak();
    let (started, cpu) = (Instant::now(), cpu_secs());
    let total = plain_copy(hot, cold, "bench/object", "bench/plain").await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "baseline plain streaming copy (no hashing, 1 part in flight): {:.1} MB/s, {secs:.1} s, process CPU {:.1} s, peak RSS {:.0} MiB",
        total as f64 / secs / 1e6,
        cpu_secs() - cpu,
        peak_rss_mib()
    );

    // The shape of a 5 TiB object: cold parts of 512 MiB (S3 allows 10,000), which the
    // copy streams as it reads; and, for contrast, the same parts held whole. The hot object
    // has 64 MiB parts, too large for the cold copy to follow.
    put_object(hot, "bench/large-parts", size, 64 << 20).await?;
    for (label, stream_over) in [
        ("streamed as read", STREAM_PARTS_OVER),
        ("held whole", u64::MAX),
    ] {
        let tuning = Tuning {
            part_size: 512 << 20,
            stream_over,
        };
        reset_peak();
        let (started, cpu) = (Instant::now(), cpu_secs());
        let job = CopyJob {
            tuning,
            ..CopyJob::new(
                Place {
                    store: hot,
                    key: "bench/large-parts",
                },
                Place {
                    store: cold,
                    key: "bench/large",
                },
                size,
            )
        };
        let Progress::Done(copied) = job.run().await? else {
            anyhow::bail!("a copy with no time limit stopped");
        };
        let secs = started.elapsed().as_secs_f64();
        println!(
            "transfer in 512 MiB parts, {label}: {:.1} MB/s, {secs:.1} s, process CPU {:.1} s, peak RSS {:.0} MiB",
            copied.size as f64 / secs / 1e6,
            cpu_secs() - cpu,
            peak_rss_mib()
        );
    }
    system.stop().await;
    Ok(())
}
