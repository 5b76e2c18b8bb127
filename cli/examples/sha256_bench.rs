//! Benchmark: SHA-256 of one file with the CLI's own function (`sha2`) beside `ring`,
//! `aws-lc-rs` and `openssl dgst -sha256` (a process, where installed), each reading the file
//! in the same 1 MiB blocks. Rounds alternate the implementations so that a busy machine
//! slows them alike; the page cache is warmed by one untimed read first. Every digest must
//! equal the CLI's, or the run fails.
//!
//! `cargo run --release -p filestore-cli --example sha256_bench -- FILE [ROUNDS]` (default 5);
//! add `--features sha2/asm` to measure `sha2` with its `asm` feature. `bench/hash` runs both.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use filestore_cli::upload::sha256_file;

const BLOCK: usize = 1 << 20;

fn hash_blocks(path: &Path, mut update: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        update(&buf[..n]);
    }
}

fn with_ring(path: &Path) -> anyhow::Result<String> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    hash_blocks(path, |b| ctx.update(b))?;
    Ok(hex::encode(ctx.finish()))
}

fn with_aws_lc(path: &Path) -> anyhow::Result<String> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    hash_blocks(path, |b| ctx.update(b))?;
    Ok(hex::encode(ctx.finish()))
}

fn with_openssl(path: &Path) -> anyhow::Result<String> {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(path)
        .output()?;
    anyhow::ensure!(out.status.success(), "openssl failed");
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

type Hasher = fn(&Path) -> anyhow::Result<String>;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: sha256_bench FILE [ROUNDS]"))?,
    );
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let size = std::fs::metadata(&path)?.len();

    let cli: Hasher = |p| Ok(sha256_file(p, |_| {})?.into());
    let mut hashers: Vec<(&str, Hasher)> = vec![
        ("cli (sha2 0.10)", cli),
        ("ring 0.17", with_ring),
        ("aws-lc-rs 1", with_aws_lc),
    ];
    let openssl = Command::new("openssl").arg("version").output();
    match openssl {
        Ok(out) if out.status.success() => hashers.push(("openssl dgst -sha256", with_openssl)),
        _ => println!("openssl not found: skipped"),
    }

    // Warms the page cache and gives the digest every implementation must match.
    let expected = String::from(sha256_file(&path, |_| {})?);
    println!(
        "file: {} ({size} bytes), {rounds} rounds, MB = 10^6 bytes",
        path.display()
    );
    let mut rates = vec![Vec::new(); hashers.len()];
    for _ in 0..rounds {
        for (i, (name, hash)) in hashers.iter().enumerate() {
            let started = Instant::now();
            let digest = hash(&path)?;
            let secs = started.elapsed().as_secs_f64();
            anyhow::ensure!(
                digest == expected,
                "{name} computed {digest}, not {expected}"
            );
            rates[i].push(size as f64 / secs / 1e6);
        }
    }
    for ((name, _), rates) in hashers.iter().zip(&mut rates) {
        let (min, max) = (
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "{name:<22} median {:7.0} MB/s  (min {min:.0}, max {max:.0})",
            median(rates)
        );
    }
    Ok(())
}
