#!/usr/bin/env python3
"""Cold start of the function binaries against a fake Lambda Runtime API, beside a bare
`lambda_runtime` hello binary built the same way (see bench/coldstart, which builds them).

Each run starts one binary with a fresh Runtime API on a loopback port and measures:
- init: from just before the process is started to its first `GET .../invocation/next`;
- first and second invocation: from the event handed out to the response posted;
- peak RSS (VmHWM) when it asks for a third event, after which it is killed, and what is resident
  then split into anonymous memory (heap, stacks: the process's own) and file pages (the
  binary's code and read-only data, and the shared libraries: clean pages of the page cache,
  which Linux maps 64 KiB around each page touched);
- minor page faults by then (each maps pages of the binary on first touch, or a fresh page);
- the binary's size.

The AWS endpoint is a closed loopback port (AWS_MAX_ATTEMPTS=1), so no call leaves the
machine: an init-time connection attempt is refused at once, and the events are chosen to
need no AWS call (an unauthenticated request, an empty SQS batch); the janitor's sweep is
refused at its first call and reports an error. Contenders are rotated in every round.

usage: coldstart.py BIN_DIR ROUNDS NAME...   (NAME `hello` is the baseline; `NAME-x` is NAME built
another way, e.g. `auth-size`)
COLDSTART_SMAPS=DIR keeps each binary's /proc/PID/smaps (its last run) in DIR/NAME.
run_once() also takes a command to run the binary under (bench/coldcode.py runs it under
callgrind), then stopped with SIGTERM so the tool can write its output.
"""

import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HTTP_EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/v1/me",
    "rawQueryString": "",
    "headers": {"host": "api.example.com", "user-agent": "bench"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "bench",
        "domainName": "api.example.com",
        "domainPrefix": "api",
        "http": {
            "method": "GET",
            "path": "/v1/me",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "bench",
        },
        "requestId": "bench",
        "routeKey": "$default",
        "stage": "$default",
        "time": "02/Dec/2026:00:00:00 +0000",
        "timeEpoch": 1796169600000,
    },
    "isBase64Encoded": False,
}
# Each function's environment as infra/sam/template.yaml sets it, but for the token key, which
# the deployed functions read from Secrets Manager during init (one more client and call).
COLD_STORE = {"files", "fastupload", "shares", "transfer", "janitor"}
QUEUE = {"transfer", "janitor"}
EVENTS = {
    "transfer": {"Records": []},
    "janitor": {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
    "hello": {"hello": "world"},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime(http.server.ThreadingHTTPServer):
    """The Runtime API for one process: hands out two events, records when things happen."""

    daemon_threads = True

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = json.dumps(event).encode()
        self.nexts = []  # perf_counter of each GET next
        self.sent = []  # when each event was handed out
        self.done = []  # when each response (or error) was posted
        self.outcomes = []
        self.third = threading.Event()
        self.stop = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out as they are written: no Nagle wait on the client's ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def do_GET(self):
        rt = self.server
        rt.nexts.append(time.perf_counter())
        n = len(rt.nexts)
        if n > 2:
            rt.third.set()
            rt.stop.wait(30)
            return
        self.send_response(200)
        for name, value in [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(rt.event))),
            ("Lambda-Runtime-Aws-Request-Id", f"req-{n}"),
            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000)),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
            ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
        ]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(rt.event)
        self.wfile.flush()
        rt.sent.append(time.perf_counter())

    def do_POST(self):
        rt = self.server
        now = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/invocation/" in self.path:
            rt.done.append(now)
            rt.outcomes.append(self.path.rsplit("/", 1)[-1])
        else:
            rt.outcomes.append("init error: " + body.decode(errors="replace")[:200])
            rt.third.set()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def run_once(path, name, wrap=()):
    function = name.split("-")[0]  # `auth-size` is auth built another way
    rt = Runtime(EVENTS.get(function, HTTP_EVENT))
    threading.Thread(target=rt.serve_forever, daemon=True).start()
    closed = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{rt.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
        "FILESTORE_TABLE": "bench",
        "FILESTORE_HOT_BUCKET": "bench-hot",
        "FILESTORE_JWT_SECRET": "x" * 32,
        "RUST_LOG": "off",
    }
    # The cold store and the transfer queue only where the template gives them.
    if function in COLD_STORE:
        env["FILESTORE_COLD_BUCKET"] = "bench-cold"
    if function in QUEUE:
        env["FILESTORE_TRANSFER_QUEUE_URL"] = f"http://127.0.0.1:{closed}/000000000000/bench"
    start = time.perf_counter()
    proc = subprocess.Popen([*wrap, path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = rt.third.wait(30)
    rss = None
    if smaps_dir := os.environ.get("COLDSTART_SMAPS"):
        # Where the resident pages are (file text, relocated data, heap, stacks): kept per name.
        try:
            with open(f"/proc/{proc.pid}/smaps") as f, open(os.path.join(smaps_dir, name), "w") as out:
                out.write(f.read())
        except FileNotFoundError:
            pass
    anon = file = faults = None
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            # Minor page faults so far (field 10): mostly the binary's pages mapped on first touch.
            faults = int(f.read().rsplit(")", 1)[1].split()[7])
    except FileNotFoundError:
        pass
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                key, value = line.split(":", 1)
                mib = int(value.split()[0]) / 1024 if value.strip().endswith("kB") else None
                if key == "VmHWM":
                    rss = mib
                elif key == "RssAnon":
                    anon = mib
                elif key == "RssFile":
                    file = mib
    except FileNotFoundError:
        pass
    if wrap:
        proc.terminate()
    else:
        proc.kill()
    proc.wait()
    rt.stop.set()
    rt.shutdown()
    rt.server_close()
    if not finished or len(rt.done) < 2 or not rt.nexts:
        raise SystemExit(f"{name}: no two invocations ({rt.outcomes})")
    return {
        "init": (rt.nexts[0] - start) * 1000,
        "first": (rt.done[0] - rt.sent[0]) * 1000,
        "second": (rt.done[1] - rt.sent[1]) * 1000,
        "rss": rss,
        "anon": anon,
        "file": file,
        "faults": faults,
        "outcomes": rt.outcomes,
    }


def main():
    bin_dir, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    runs = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            runs[name].append(run_once(os.path.join(bin_dir, name), name))
    med = {
        name: {k: statistics.median(x[k] for x in rs) for k in ("init", "first", "second", "rss", "anon", "file", "faults")}
        for name, rs in runs.items()
    }
    base = med.get("hello")
    size = {name: os.path.getsize(os.path.join(bin_dir, name)) / 1e6 for name in names}
    print(f"medians of {rounds} runs; ratio to hello in brackets")
    print(
        f"{'binary':<11} {'init ms':>14} {'1st inv ms':>14} {'2nd inv ms':>14} {'peak RSS MiB':>16}"
        f" {'anon MiB':>14} {'file MiB':>14} {'faults':>14} {'size MB':>14}  answers"
    )
    for name in names:
        m = med[name]

        def cell(value, key, fmt):
            ratio = f" ({value / base[key]:.1f}x)" if base and name != "hello" and base[key] else ""
            return f"{value:{fmt}}{ratio}"

        cells = [
            cell(m["init"], "init", ".2f"),
            cell(m["first"], "first", ".2f"),
            cell(m["second"], "second", ".2f"),
            cell(m["rss"], "rss", ".1f"),
            cell(m["anon"], "anon", ".1f"),
            cell(m["file"], "file", ".1f"),
            cell(m["faults"], "faults", ".0f"),
        ]
        s = f"{size[name]:.2f}"
        if base and name != "hello":
            s += f" ({size[name] / size['hello']:.1f}x)"
        print(f"{name:<11} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} {cells[3]:>16} {cells[4]:>14} {cells[5]:>14} {cells[6]:>14} {s:>14}  {'/'.join(runs[name][0]['outcomes'])}")


if __name__ == "__main__":
    main()
