# The launcher, part 5 of 5: CORS for the runner's origins only, and the server itself.
#
# Runs moto's S3/DynamoDB/SQS server until our parent goes away.
# Prints "READY <port>" once listening. The parent holds our stdin: when it exits for any
# reason (Ctrl-C, crash, end of a test run) stdin reaches EOF and the emulator stops with it.
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

_dispatch = DomainDispatcherApplication.__call__

# moto answers CORS for any origin (flask-cors on every service, and the bucket's rule, which
# names "*" since the bucket cannot know the runner's port). Any web page a developer opens
# could then read the local table, password hashes included. Only the origins the runner
# names (FILESTORE_EMULATOR_ORIGINS, one a line: the local page's own, and the API's
# allow-list) keep the Access-Control-* headers; any other gets none, so its browser refuses.
_ORIGINS = {
    line.strip().lower()
    for line in os.environ.get("FILESTORE_EMULATOR_ORIGINS", "").splitlines()
    if line.strip()
}


def _cors_guarded(environ, start_response):
    if environ.get("HTTP_ORIGIN", "").strip().lower() in _ORIGINS:
        return start_response

    def start(status, headers, exc_info=None):
        kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
        return start_response(status, kept, exc_info)

    return start


def _verified_dispatch(self, environ, start_response):
    start_response = _cors_guarded(environ, start_response)
    refusal = _presign_refusal(environ)
    if refusal is None:
        return _dispatch(self, environ, start_response)
    # Read the body first: answering before it is read breaks the client's send.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while length > 0:
        chunk = stream.read(min(length, 1 << 20))
        if not chunk:
            break
        length -= len(chunk)
    code, message = refusal
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


DomainDispatcherApplication.__call__ = _verified_dispatch


class _Server(ThreadedMotoServer):
    def _server_entry(self):
        app = _gated(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True)
        self._server_ready_event.set()
        self._server.serve_forever()


state_dir = sys.argv[3] if len(sys.argv) > 3 else None
if state_dir:
    os.makedirs(state_dir, exist_ok=True)
    try:
        _load(state_dir)
    except Exception as e:  # noqa: BLE001 said in one line; the saved state is left as it is
        sys.exit(f"cannot read the saved state in {state_dir}: {e!r}")
# Ctrl-C reaches the whole process group; the runner decides when we stop (stdin closes).
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = _Server(ip_address=sys.argv[1], port=int(sys.argv[2]), verbose=False)
server.start()
if state_dir:
    every = float(sys.argv[4])
    threading.Thread(target=_snapshots, args=(state_dir, every), daemon=True).start()
print("READY", server.get_host_and_port()[1], flush=True)
try:
    sys.stdin.read()
finally:
    server.stop()
    if state_dir:
        try:
            _save(state_dir)
        except Exception as e:  # noqa: BLE001 said, then the exit status tells the runner
            print(f"snapshot failed: {e!r}", file=sys.stderr, flush=True)
            sys.exit(1)
