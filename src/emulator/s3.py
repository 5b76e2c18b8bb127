# The launcher, part 2 of 5: moto's S3 made to answer as S3 does where the system depends on
# it (download headers, upload times, one event per upload, part checksums).
import base64
import datetime
import functools
import hashlib
import hmac
import threading

from moto.s3 import models as s3_models
from moto.s3 import exceptions as s3_exceptions
from moto.s3 import responses as s3_responses
from moto.s3 import notifications as s3_notifications
from moto.s3.responses import S3Response

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

# moto's CompleteMultipartUpload stores the object through `put_object`, which sends an
# `ObjectCreated:Put` event, and then sends `ObjectCreated:CompleteMultipartUpload`: two
# messages (two transfers) per upload where S3 sends the one. S3's delivery is at least
# once, so the transfer copes with a duplicate; what a test counts must be what S3 sends.
_completing = threading.local()
_send_event = s3_notifications.send_event


def _send_event_once(account_id, event_name, bucket, key):
    if getattr(_completing, "active", False) and (
        event_name == s3_notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT
    ):
        return
    _send_event(account_id, event_name, bucket, key)


def _complete_sending_one_event(complete):
    @functools.wraps(complete)
    def run(*args, **kwargs):
        _completing.active = True
        try:
            return complete(*args, **kwargs)
        finally:
            _completing.active = False

    return run


s3_notifications.send_event = _send_event_once
s3_models.S3Backend.complete_multipart_upload = _complete_sending_one_event(
    s3_models.S3Backend.complete_multipart_upload
)

# moto neither checks a part's `x-amz-checksum-sha256` against its bytes nor minds one on an
# upload created without a checksum algorithm, and it forgets the checksum, so ListParts
# cannot give it back for the complete. S3 does all three: a mismatch is 400 `BadDigest`, a
# checksum the upload was not created for is 400 `InvalidRequest`, and ListParts names each
# part's `ChecksumSHA256`.
class _PartChecksumRefused(s3_exceptions.S3ClientError):
    code = 400

    def __init__(self, code, message):
        super().__init__(code, message)


_upload_part = S3Response.upload_part


def _upload_part_checked(self):
    given = self.headers.get("x-amz-checksum-sha256")
    if given is None:
        return _upload_part(self)
    upload_id = self._get_param("uploadId")
    multipart = self.backend.get_bucket(self.bucket_name).multiparts.get(upload_id)
    if multipart is not None:
        algorithm = (multipart.metadata.get("x-amz-checksum-algorithm") or "").upper()
        if algorithm != "SHA256":
            raise _PartChecksumRefused(
                "InvalidRequest",
                "Checksum Type mismatch occurred, expected checksum Type: "
                f"{algorithm.lower() or 'null'}, actual checksum Type: sha256",
            )
    actual = base64.b64encode(hashlib.sha256(self.body or b"").digest()).decode()
    if not hmac.compare_digest(actual, given):
        raise _PartChecksumRefused(
            "BadDigest", "The SHA256 you specified did not match the calculated checksum."
        )
    answer = _upload_part(self)
    part = multipart.parts.get(self._get_int_param("partNumber")) if multipart else None
    if part is not None:
        part.checksum_algorithm, part.checksum_value = "SHA256", given
    return answer


S3Response.upload_part = _upload_part_checked
s3_responses.S3_MULTIPART_LIST_RESPONSE = s3_responses.S3_MULTIPART_LIST_RESPONSE.replace(
    "<Size>{{ part.size }}</Size>",
    "<Size>{{ part.size }}</Size>{% if part.checksum_value %}"
    "<ChecksumSHA256>{{ part.checksum_value }}</ChecksumSHA256>{% endif %}",
)
assert "ChecksumSHA256" in s3_responses.S3_MULTIPART_LIST_RESPONSE, "moto's part list changed"

# moto answers a ranged GetObject by reading the whole object (`FakeKey.value`, under the
# key's lock) and slicing it, so every ranged GET of a parallel download costs a read of the
# whole object, one at a time per object. S3 reads only the range. Here a single
# `bytes=first-last` or `bytes=first-` or `bytes=-suffix` range that lies within the object
# is read alone from the key's buffer; moto still builds the answer's headers (ETag,
# conditions, `response-*` overrides), and anything else (several ranges, one past the end,
# `partNumber`) is left to moto as before.
class _KeyRange:
    """A stored key whose `value` is only the bytes from `first` to `last` inclusive."""

    def __init__(self, key, first, last):
        self._key, self._first, self._last = key, first, last

    def __getattr__(self, name):
        return getattr(self._key, name)

    @property
    def value(self):
        with self._key.lock:
            self._key._value_buffer.seek(self._first)
            return self._key._value_buffer.read(self._last - self._first + 1)


def _single_range(header, size):
    """(first, last) of a one-range `Range` header that lies within `size` bytes, as S3
    resolves it, or None for anything moto should answer itself."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        first = int(first) if first else None
        last = int(last) if last else None
    except ValueError:
        return None
    if first is None:
        if not last or size == 0:
            return None
        return max(size - last, 0), size - 1
    if first >= size or (last is not None and last < first):
        return None
    return first, size - 1 if last is None else min(last, size - 1)


_get_object = S3Response.get_object


def _get_object_reading_the_range(self):
    header = self.headers.get("range")
    if not header or self._get_int_param("partNumber"):
        return _get_object(self)
    key, not_modified = self._get_key()
    span = None if not_modified else _single_range(header, key.size)
    if span is None:
        return _get_object(self)
    first, last = span
    self._get_key = lambda *args, **kwargs: (_KeyRange(key, first, last), False)
    status, headers, body = _get_object(self)
    if status != 200:
        return status, headers, body
    if first or last < key.size - 1:
        # S3 sends no whole-object checksum with a part of the object.
        for name in [h for h in headers if h.lower().startswith("x-amz-checksum-")]:
            del headers[name]
    headers["content-range"] = f"bytes {first}-{last}/{key.size}"
    headers["content-length"] = str(len(body))
    return 206, headers, body


S3Response.get_object = _get_object_reading_the_range
