"""The local system at scale: one user with 1k, 10k and 100k files.

Run through `bench/emulator`, which builds the runner and calls this with the emulator's
Python (boto3 and requests come with moto). It starts its own system (ports 18080, 14566,
14567, nothing kept on disk), signs up one user and, at each level, prints the hot
emulator's RSS, the latency of `GET /v1/files` (one client in a row, then 30 clients at once)
and of `POST /v1/uploads/{id}/complete` for a real 1 KiB upload. The idle level (0 seeded
files) is the baseline of the same run.

Seeding goes straight to DynamoDB (BatchWriteItem, 25 items per call): copies of a real
file record the API wrote, each under a new UUIDv7 file id, so listing reads them as files.
Their S3 objects are not written (seeding 100k through the API would take hours on the old
emulator), so the RSS is the table's, not the objects'. At the end the seeded records are
deleted again and the RSS measured once more (is the memory given back?).

With `--keep DIR`, the system keeps its data in DIR (FILESTORE_DATA_DIR) instead, and the
seeded records stay: at the end it is stopped (Ctrl-C: the emulators write their last
snapshot) and started again, and the script prints how long each took, the size of the
saved state and the RSS after the restart. A periodic snapshot holds requests back for
about as long as the stop's save takes.

A watcher stops everything if the emulator grows past BENCH_MAX_RSS_MIB (default 8192).
"""

import argparse
import concurrent.futures
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

import boto3
import requests

MIB = 1024 * 1024


def uuid7(ms: int) -> str:
    """A UUIDv7 at millisecond `ms`: ids made in increasing `ms` sort in that order."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0x2 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
        except OSError:
            pass
    return found


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, args, fresh=True):
        self.args = args
        self.api = f"http://127.0.0.1:{args.port}"
        self.endpoint = f"http://127.0.0.1:{args.emulator_port}"
        env = dict(os.environ)
        env.update(
            FILESTORE_PORT=str(args.port),
            FILESTORE_EMULATOR_PORT=str(args.emulator_port),
            FILESTORE_COLD_EMULATOR_PORT=str(args.cold_emulator_port),
            FILESTORE_TABLE="filestore-bench",
            FILESTORE_HOT_BUCKET="filestore-bench-hot",
            FILESTORE_COLD_BUCKET="filestore-bench-cold",
            FILESTORE_TRANSFER_QUEUE="filestore-bench-transfer",
            FILESTORE_DATA_DIR=args.keep or "",
            RUST_LOG="warn",
        )
        self.system = subprocess.Popen(
            [args.binary] + (["--fresh"] if args.keep and fresh else []),
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in self.system.stdout:
            if "Press Ctrl-C" in line:
                break
        else:
            sys.exit("the system did not start")
        threading.Thread(target=lambda: [None for _ in self.system.stdout], daemon=True).start()
        self.emulator = next(
            p for p in children(self.system.pid) if f" {args.emulator_port}" in cmdline(p)
        )
        self.ddb = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.stopped = threading.Event()
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self):
        cap = float(os.environ.get("BENCH_MAX_RSS_MIB", "8192"))
        while not self.stopped.wait(1):
            try:
                if rss_mib(self.emulator) > cap:
                    print(f"emulator RSS over {cap:.0f} MiB: stopping", flush=True)
                    self.stop()
                    os._exit(1)
            except OSError:
                return

    def stop(self):
        self.stopped.set()
        emulators = children(self.system.pid)
        self.system.send_signal(signal.SIGINT)
        try:
            self.system.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.system.kill()
        for pid in emulators:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def signup(self):
        session = requests.Session()
        name = f"bench_{uuid.uuid4().hex[:12]}"
        creds = {"username": name, "password": "correct horse battery"}
        user = session.post(f"{self.api}/v1/auth/signup", json=creds).json()
        token = session.post(f"{self.api}/v1/auth/login", json=creds).json()["token"]
        self.user_id = user["user_id"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def upload(self, session) -> tuple[str, float]:
        """A real 1 KiB upload; returns its file id and the complete's seconds."""
        h = self.headers
        up = session.post(
            f"{self.api}/v1/uploads", headers=h, json={"name": "b.bin", "size": 1024}
        ).json()
        part = session.post(
            f"{self.api}/v1/uploads/{up['upload_id']}/parts",
            headers=h,
            json={"part_numbers": [1]},
        ).json()["parts"][0]
        put = session.put(part["url"], headers=part.get("headers", {}), data=os.urandom(1024))
        put.raise_for_status()
        started = time.perf_counter()
        done = session.post(
            f"{self.api}/v1/uploads/{up['upload_id']}/complete", headers=h, json={}
        )
        elapsed = time.perf_counter() - started
        done.raise_for_status()
        return done.json()["file"]["file_id"], elapsed

    def settle(self, session, file_ids):
        """Waits until the transfer worker verified these files, so it does not run beside
        the next measurement."""
        deadline = time.time() + 600
        for file_id in file_ids:
            while time.time() < deadline:
                f = session.get(f"{self.api}/v1/files/{file_id}", headers=self.headers).json()
                if f.get("verified"):
                    break
                time.sleep(0.5)

    def template(self, file_id):
        item = self.ddb.get_item(
            TableName="filestore-bench",
            Key={"PK": {"S": f"USER#{self.user_id}"}, "SK": {"S": f"FILE#{file_id}"}},
        )["Item"]
        return item

    def seed(self, template, count, start_ms):
        """Writes `count` copies of `template` with new ids; returns their keys."""
        keys = []
        batches = []
        for i in range(count):
            file_id = uuid7(start_ms + i)
            item = dict(template)
            item["SK"] = {"S": f"FILE#{file_id}"}
            item["file_id"] = {"S": file_id}
            item["name"] = {"S": f"seeded-{i}.bin"}
            keys.append({"PK": item["PK"], "SK": item["SK"]})
            batches.append({"PutRequest": {"Item": item}})
        self.batch_write(batches)
        return keys

    def batch_write(self, requests_):
        chunks = [requests_[i : i + 25] for i in range(0, len(requests_), 25)]

        def write(chunk):
            pending = {"filestore-bench": chunk}
            while pending:
                pending = self.ddb.batch_write_item(RequestItems=pending)["UnprocessedItems"]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(write, chunks))

    def list_latencies(self, clients, per_client):
        def run(_):
            session = requests.Session()
            times = []
            for _ in range(per_client):
                started = time.perf_counter()
                r = session.get(f"{self.api}/v1/files", headers=self.headers)
                times.append(time.perf_counter() - started)
                r.raise_for_status()
            return times

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            return [t for ts in pool.map(run, range(clients)) for t in ts]

    def level(self, files, session):
        ms = lambda s: f"{s * 1000:.0f}"  # noqa: E731
        # The first list after seeding also orders the partition's keys again (the emulator
        # keeps them in order between writes): its own column.
        first = self.list_latencies(1, 1)[0]
        seq = self.list_latencies(1, self.args.list_rounds)
        conc = self.list_latencies(30, self.args.list_rounds)
        completes = []
        ids = []
        rss_before = rss_mib(self.emulator)
        for _ in range(self.args.uploads):
            file_id, seconds = self.upload(session)
            ids.append(file_id)
            completes.append(seconds)
        rss_after = rss_mib(self.emulator)
        self.settle(session, ids)
        print(
            f"| {files} | {rss_before:.0f} -> {rss_after:.0f} | {ms(first)} "
            f"| {ms(statistics.median(seq))} "
            f"| {ms(statistics.median(conc))} / {ms(pct(conc, 95))} "
            f"| {ms(statistics.median(completes))} ({ms(min(completes))}-{ms(max(completes))}) |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("levels", nargs="*", type=int, default=[1000, 10000, 100000])
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 18080)))
    parser.add_argument(
        "--emulator-port", type=int, default=int(os.environ.get("BENCH_EMULATOR_PORT", 14566))
    )
    parser.add_argument(
        "--cold-emulator-port",
        type=int,
        default=int(os.environ.get("BENCH_COLD_EMULATOR_PORT", 14567)),
    )
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--list-rounds", type=int, default=10)
    parser.add_argument("--keep", metavar="DIR", help="keep the data in DIR; time a restart")
    args = parser.parse_intermixed_args()

    bench = Bench(args)
    try:
        bench.signup()
        session = requests.Session()
        print(f"emulator pid {bench.emulator}, idle RSS {rss_mib(bench.emulator):.0f} MiB")
        print(
            "| files | emulator RSS MiB (before -> after the uploads) | first list ms "
            "| list p50 ms, 1 client "
            "| list p50 / p95 ms, 30 clients | complete median ms (min-max) |"
        )
        print("|---|---|---|---|---|---|")
        bench.level(0, session)
        first, _ = bench.upload(session)
        bench.settle(session, [first])
        template = bench.template(first)
        seeded = []
        start_ms = int(time.time() * 1000) - 10 * 86400 * 1000
        for target in args.levels:
            started = time.perf_counter()
            keys = bench.seed(template, target - len(seeded), start_ms + len(seeded))
            seeded += keys
            print(
                f"(seeded {len(keys)} records in {time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            bench.level(target, session)
        if args.keep:
            restart(bench, args, len(seeded))
            return
        started = time.perf_counter()
        bench.batch_write([{"DeleteRequest": {"Key": k}} for k in seeded])
        time.sleep(2)
        print(
            f"deleted the {len(seeded)} seeded records in {time.perf_counter() - started:.1f} s: "
            f"emulator RSS {rss_mib(bench.emulator):.0f} MiB"
        )
    finally:
        bench.stop()


def restart(bench, args, seeded):
    started = time.perf_counter()
    bench.stop()
    stopped = time.perf_counter() - started
    size = sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(args.keep)
        for name in names
    )
    started = time.perf_counter()
    again = Bench(args, fresh=False)
    ready = time.perf_counter() - started
    try:
        headers = bench.headers
        first = requests.get(f"{again.api}/v1/files?limit=1000", headers=headers)
        first.raise_for_status()
        print(
            f"{seeded} seeded records kept in {args.keep}: {size / MIB:.1f} MiB on disk; "
            f"clean stop (last snapshot) {stopped:.1f} s, start again {ready:.1f} s, "
            f"emulator RSS after the restart {rss_mib(again.emulator):.0f} MiB, "
            f"first page after it: {len(first.json()['files'])} files"
        )
    finally:
        again.stop()


if __name__ == "__main__":
    main()
