# Runs moto's S3/DynamoDB/SQS server until our parent goes away.
# Prints "READY <port>" once listening. The parent holds our stdin: when it exits for any
# reason (Ctrl-C, crash, end of a test run) stdin reaches EOF and the emulator stops with it.
import datetime
import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.s3 import models as s3_models
from moto.s3 import responses as s3_responses
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

# DynamoDB applies each write, and each transaction, atomically and in isolation. moto serves
# requests on many threads without a lock, so two racing conditional transactions can both
# pass their conditions. One lock around the table operations restores DynamoDB's guarantee.
_lock = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def run(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    return run


for _name in (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
    "transact_get_items",
    "batch_get_item",
    "batch_write_item",
):
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

# S3 answers a signed GetObject with the headers its `response-*` query parameters name, so a
# presigned download saves under the file's name (Content-Disposition: attachment) instead of
# being shown in the browser. moto ignores them; apply them as S3 does.
_RESPONSE_OVERRIDES = {
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
    "response-content-language": "Content-Language",
    "response-content-type": "Content-Type",
    "response-expires": "Expires",
}


def _with_response_overrides(method):
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        status, headers, body = method(self, *args, **kwargs)
        if status in (200, 206):
            for param, header in _RESPONSE_OVERRIDES.items():
                value = self.querystring.get(param, [None])[0]
                if value is not None:
                    for existing in [k for k in headers if k.lower() == header.lower()]:
                        del headers[existing]
                    headers[header] = value
        return status, headers, body

    return run


S3Response.get_object = _with_response_overrides(S3Response.get_object)

# moto lists every open multipart upload as initiated in 2010; S3 gives the time it started,
# which the janitor uses to tell a transfer at work from one stopped long ago.
_multipart_init = s3_models.FakeMultipart.__init__


def _init_with_time(self, *args, **kwargs):
    _multipart_init(self, *args, **kwargs)
    now = datetime.datetime.now(datetime.timezone.utc)
    self.initiated_iso = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")


s3_models.FakeMultipart.__init__ = _init_with_time
s3_responses.S3_ALL_MULTIPARTS = s3_responses.S3_ALL_MULTIPARTS.replace(
    "<Initiated>2010-11-10T20:48:33.000Z</Initiated>",
    "<Initiated>{{ upload.initiated_iso }}</Initiated>",
)
assert "initiated_iso" in s3_responses.S3_ALL_MULTIPARTS, "moto's listing changed"

server = ThreadedMotoServer(ip_address=sys.argv[1], port=int(sys.argv[2]), verbose=False)
server.start()
print("READY", server.get_host_and_port()[1], flush=True)
try:
    sys.stdin.read()
finally:
    server.stop()
