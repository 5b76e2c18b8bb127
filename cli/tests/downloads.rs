//! Downloads in parallel ranged GETs: bytes equal around part boundaries, an interrupted
//! download resuming only its missing parts, a corrupted partial file or changed storage
//! caught, an expired URL replaced mid-way. A proxy between the binary and the system counts
//! the GETs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Cli, MIB, Run, sha256_hex, str_field, test_bytes};
use crate::proxy::{Action, Proxy, Seen};

/// The part size these tests ask for (the smallest allowed), so a few MiB make many parts.
const PART: usize = MIB;

impl Cli {
    /// Runs `download` through `proxy`, with 1 MiB parts and `extra` arguments.
    fn download_via(&self, proxy: &Proxy, file_id: &str, out: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "download",
            file_id,
            "-o",
            out,
            "--part-size",
            "1MiB",
            "--json",
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        proxy.route(&mut cmd);
        self.run_with(cmd)
    }

    /// Uploads `data` as `name`; returns the file id.
    fn upload_bytes(&self, name: &str, data: &[u8]) -> String {
        self.write(name, data);
        let up = self.json(&["upload", name]);
        str_field(&up["uploads"][0]["file"], "file_id").to_string()
    }

    /// Waits (up to 60 s) until the server reports the file verified, so downloads check
    /// its SHA-256.
    fn wait_verified(&self, file_id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.json(&["info", file_id])["verified"] != true {
            assert!(Instant::now() < deadline, "{file_id} not verified in 60 s");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn partial(&self, file_id: &str) -> std::path::PathBuf {
        self.path(&format!(".filestore-{file_id}.part"))
    }

    fn sidecar(&self, file_id: &str) -> std::path::PathBuf {
        self.path(&format!(".filestore-{file_id}.part.json"))
    }

    /// The parts the sidecar records as written.
    fn parts_done(&self, file_id: &str) -> BTreeSet<u64> {
        let state: Value =
            serde_json::from_slice(&std::fs::read(self.sidecar(file_id)).expect("sidecar"))
                .expect("sidecar is JSON");
        state["done"]
            .as_array()
            .expect("done")
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    }
}

/// The `Range` header asking for part `n` of a file of `size` bytes.
fn part_range(n: usize, size: usize) -> String {
    format!("bytes={}-{}", n * PART, size.min((n + 1) * PART) - 1)
}

fn ranges(gets: &[Seen]) -> BTreeSet<String> {
    gets.iter()
        .map(|g| g.range.clone().expect("a ranged GET"))
        .collect()
}

/// Files from empty to five parts and three bytes, around each part boundary, come back
/// byte for byte. Under two parts a file comes in one GET without a Range; from two parts
/// on, one ranged GET per part, each part exactly once.
#[test]
fn downloads_are_byte_for_byte_around_part_boundaries() {
    let cli = Cli::logged_in();
    let proxy = Proxy::start();
    let sizes = [
        0,
        1,
        PART - 1,
        PART,
        PART + 1,
        2 * PART - 1,
        2 * PART,
        2 * PART + 1,
        5 * PART + 3,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        std::fs::create_dir_all(cli.path("up")).unwrap();
        cli.write(&format!("up/f{i}.bin"), &test_bytes(size, 300 + i as u64));
    }
    let up = cli.json(&["upload", "up"]);
    let ids: Vec<String> = (0..sizes.len())
        .map(|i| {
            let name = format!("/up/f{i}.bin");
            let u = up["uploads"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["remote_path"] == name.as_str())
                .unwrap_or_else(|| panic!("{name} not uploaded: {up}"));
            str_field(&u["file"], "file_id").to_string()
        })
        .collect();

    for ((i, &size), id) in sizes.iter().enumerate().zip(&ids) {
        proxy.clear();
        let out = format!("f{i}.copy");
        let run = cli.download_via(&proxy, id, &out, &["--concurrency", "4"]);
        run.success();
        let down = run.json();
        let data = test_bytes(size, 300 + i as u64);
        assert!(
            std::fs::read(cli.path(&out)).unwrap() == data,
            "{size} bytes differ"
        );
        assert_eq!(down["sha256"], sha256_hex(&data).as_str(), "{size}");
        let count = size.div_ceil(PART);
        assert_eq!(down["part_count"], count, "{size}: {down}");
        assert_eq!(down["parts_fetched"], count, "{size}: {down}");
        assert_eq!(down["bytes_downloaded"], size, "{size}: {down}");
        let gets = proxy.storage_gets();
        if size == 0 {
            assert!(gets.is_empty(), "nothing to fetch: {gets:?}");
        } else if size < 2 * PART {
            assert_eq!(down["streams"], 1, "{size}");
            assert_eq!(gets.len(), 1, "{size}: {gets:?}");
            assert_eq!(gets[0].range, None, "the whole file, no Range");
        } else {
            assert_eq!(down["streams"], 4, "{size}");
            assert_eq!(gets.len(), count, "one GET per part: {gets:?}");
            let expected: BTreeSet<String> = (0..count).map(|n| part_range(n, size)).collect();
            assert_eq!(ranges(&gets), expected, "{size}");
        }
        assert!(!cli.partial(id).exists() && !cli.sidecar(id).exists());
    }
}

/// A download stopped after two of seven parts keeps its partial file and a sidecar naming
/// the parts written, and no target. The re-run GETs exactly the other parts, each once,
/// and the file is whole; the partial file and sidecar are gone.
#[test]
fn interrupted_download_fetches_only_the_missing_parts() {
    let cli = Cli::logged_in();
    let size = 6 * PART + 100;
    let data = test_bytes(size, 310);
    let id = cli.upload_bytes("big.bin", &data);
    let proxy = Proxy::start();

    let mut first = cli.command(&[
        "download",
        &id,
        "-o",
        "copy.bin",
        "--part-size",
        "1MiB",
        "--concurrency",
        "3",
    ]);
    proxy.route(&mut first);
    cli.run_interrupted(first, 2);
    assert!(!cli.path("copy.bin").exists(), "no target until complete");
    let done = cli.parts_done(&id);
    assert_eq!(done.len(), 2, "{done:?}");
    let partial = std::fs::read(cli.partial(&id)).expect("partial file kept");
    assert_eq!(partial.len(), size);
    for &n in &done {
        let r = n as usize * PART..size.min((n as usize + 1) * PART);
        assert!(partial[r.clone()] == data[r], "part {n} written as it is");
    }

    proxy.clear();
    let run = cli.download_via(&proxy, &id, "copy.bin", &["--concurrency", "3"]);
    run.success();
    let down = run.json();
    assert_eq!(down["parts_already_done"], 2, "{down}");
    assert_eq!(down["parts_fetched"], 5, "{down}");
    let resumed: usize = done
        .iter()
        .map(|&n| size.min((n as usize + 1) * PART) - n as usize * PART)
        .sum();
    assert_eq!(down["resumed_from"], resumed);
    assert_eq!(down["bytes_downloaded"], size - resumed);
    let gets = proxy.storage_gets();
    assert_eq!(gets.len(), 5, "one GET per missing part: {gets:?}");
    let missing: BTreeSet<String> = (0..7)
        .filter(|n| !done.contains(&(*n as u64)))
        .map(|n| part_range(n, size))
        .collect();
    assert_eq!(ranges(&gets), missing);
    assert_eq!(down["sha256"], sha256_hex(&data).as_str());
    assert!(std::fs::read(cli.path("copy.bin")).unwrap() == data);
    assert!(!cli.partial(&id).exists(), "partial renamed into place");
    assert!(!cli.sidecar(&id).exists(), "sidecar removed");
}

/// Bytes of a written part changed on disk between two runs are caught by the SHA-256
/// check: no target is made, the partial download is removed, and a third run fetches the
/// file whole and right.
#[test]
fn corrupted_partial_file_is_caught_by_the_sha256_check() {
    let cli = Cli::logged_in();
    let size = 5 * PART + 7;
    let data = test_bytes(size, 320);
    let id = cli.upload_bytes("big.bin", &data);
    cli.wait_verified(&id);

    let first = cli.command(&["download", &id, "-o", "copy.bin", "--part-size", "1MiB"]);
    cli.run_interrupted(first, 2);
    let n = *cli.parts_done(&id).first().unwrap() as usize;
    let mut partial = std::fs::read(cli.partial(&id)).unwrap();
    partial[n * PART + 10] ^= 0xff;
    std::fs::write(cli.partial(&id), &partial).unwrap();

    let line = cli
        .run(&["download", &id, "-o", "copy.bin", "--part-size", "1MiB"])
        .failure();
    assert!(line.contains("do not match the file's SHA-256"), "{line}");
    assert!(!cli.path("copy.bin").exists(), "no bad file left");
    assert!(!cli.partial(&id).exists() && !cli.sidecar(&id).exists());

    let down = cli.json(&["download", &id, "-o", "copy.bin", "--part-size", "1MiB"]);
    assert_eq!(down["sha256_checked"], true);
    assert_eq!(down["parts_already_done"], 0);
    assert!(std::fs::read(cli.path("copy.bin")).unwrap() == data);
}

/// Storage's copy replaced (other bytes, same size) between an interrupted run and its
/// re-run: the re-run sees the other ETag, starts over rather than mix the two, and the
/// whole new copy then fails the SHA-256 check; no file is left.
#[test]
fn changed_storage_is_never_mixed_into_a_resumed_download() {
    let cli = Cli::logged_in();
    let size = 5 * PART + 9;
    let data = test_bytes(size, 330);
    let id = cli.upload_bytes("big.bin", &data);
    cli.wait_verified(&id);
    let proxy = Proxy::start();

    let mut first = cli.command(&["download", &id, "-o", "copy.bin", "--part-size", "1MiB"]);
    proxy.route(&mut first);
    cli.run_interrupted(first, 2);
    let object = proxy.storage_gets()[0]
        .url
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let put = reqwest::blocking::Client::new()
        .put(&object)
        .body(test_bytes(size, 331))
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    let run = cli.run(&["download", &id, "-o", "copy.bin", "--part-size", "1MiB"]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.stderr());
    let stderr = run.stderr();
    assert!(stderr.contains("starting the download over"), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(last.contains("do not match the file's SHA-256"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!cli.path("copy.bin").exists(), "no bad file left");
    assert!(!cli.partial(&id).exists() && !cli.sidecar(&id).exists());
}

/// Storage refuses the download URL as expired after its first two GETs: the GETs in flight
/// get a fresh URL (asked for once, not once per GET) and the download completes.
#[test]
fn expired_url_mid_download_is_replaced_once() {
    fn expire_after_two(req: &Seen, before: &[Seen]) -> Action {
        let first = before
            .iter()
            .find(|s| s.is_storage_get())
            .and_then(Seen::signed_at);
        let served = before
            .iter()
            .filter(|s| s.is_storage_get() && !s.refused)
            .count();
        if req.is_storage_get() && served >= 2 && req.signed_at() == first {
            Action::Expire
        } else {
            Action::PassOn
        }
    }
    let cli = Cli::logged_in();
    let size = 6 * PART + 1;
    let data = test_bytes(size, 340);
    let id = cli.upload_bytes("big.bin", &data);
    let proxy = Proxy::with_rule(expire_after_two);

    let run = cli.download_via(&proxy, &id, "copy.bin", &["--concurrency", "3"]);
    run.success();
    let down = run.json();
    assert!(std::fs::read(cli.path("copy.bin")).unwrap() == data);
    let refused = proxy.seen().iter().filter(|s| s.refused).count();
    assert!(refused >= 1, "storage refused the old URL");
    assert_eq!(proxy.download_url_calls(), 2, "one URL, then one fresh one");
    assert_eq!(down["urls"], 2);
    assert_eq!(
        proxy.storage_gets().len(),
        7,
        "each part once, after refusals"
    );
}
