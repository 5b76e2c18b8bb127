# Runs moto's S3/DynamoDB/SQS server until our parent goes away.
# Prints "READY <port>" once listening. The parent holds our stdin: when it exits for any
# reason (Ctrl-C, crash, end of a test run) stdin reaches EOF and the emulator stops with it.
import base64
import bisect
import copy
import copyreg
import datetime
import functools
import gc
import hashlib
import hmac
import inspect
import io
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import weakref

from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.comparisons import get_filter_expression
from moto.s3 import models as s3_models
from moto.s3 import exceptions as s3_exceptions
from moto.s3 import responses as s3_responses
from moto.s3 import utils as s3_utils
from moto.s3 import notifications as s3_notifications
from moto.s3.responses import S3Response
from moto.backends import get_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from urllib.parse import quote, unquote
from werkzeug.serving import make_server

# DynamoDB applies each write, and each transaction, atomically and in isolation. moto serves
# requests on many threads without a lock, so two racing conditional transactions can both
# pass their conditions. A lock around the table operations restores DynamoDB's guarantee:
# writes (and transactions) one at a time, reads side by side, since a read changes nothing.


class _TableLock:
    """Many readers or one writer; a thread already inside may re-enter (a transaction calls
    put_item, a write calls get_item). Waiting writers go first, so reads cannot starve them."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._inside = threading.local()

    def run(self, exclusive, method, *args, **kwargs):
        if getattr(self._inside, "depth", 0):
            self._inside.depth += 1
            try:
                return method(*args, **kwargs)
            finally:
                self._inside.depth -= 1
        with self._cond:
            if exclusive:
                self._writers_waiting += 1
                while self._writer or self._readers:
                    self._cond.wait()
                self._writers_waiting -= 1
                self._writer = True
            else:
                while self._writer or self._writers_waiting:
                    self._cond.wait()
                self._readers += 1
        self._inside.depth = 1
        try:
            return method(*args, **kwargs)
        finally:
            self._inside.depth = 0
            with self._cond:
                if exclusive:
                    self._writer = False
                else:
                    self._readers -= 1
                self._cond.notify_all()


_lock = _TableLock()


def _serialized(method, exclusive):
    @functools.wraps(method)
    def run(*args, **kwargs):
        return _lock.run(exclusive, method, *args, **kwargs)

    return run


# moto's transact_write_items deep-copies every table a transaction names, once per item, to
# roll back on failure: with thousands of items each tiny transaction cost seconds and tens of
# MiB. Keep instead the items the transaction touches (their old versions) and put back just
# those. The rest is moto 5.1.22's own code.
assert "copy.deepcopy(\n                    self.tables[table_name]" in inspect.getsource(
    DynamoDBBackend.transact_write_items
), "moto's transact_write_items changed"


def _transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # (table, hash key, range key) -> the item before the transaction (None: absent).
    before = {}
    for item in transact_items:
        try:
            _, op = next(iter(item.items()))
            table = self.get_table(op["TableName"])
            keys = op["Item"] if "Item" in op else op["Key"]
            hash_key, range_key = self.get_keys_value(table, keys)
        except Exception:  # noqa: BLE001 moto's own checks below report it
            continue
        slot = (op["TableName"], hash_key, range_key)
        if slot not in before:
            before[slot] = copy.deepcopy(table.get_item(hash_key, range_key))

    def rollback():
        for (table_name, hash_key, range_key), old in before.items():
            table = self.tables[table_name]
            _changed(table, hash_key)
            if range_key is None:
                if old is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = old
            elif old is None:
                partition = table.items.get(hash_key)
                if partition is not None:
                    partition.pop(range_key, None)
                    if not partition:
                        del table.items[hash_key]
            else:
                table.items[hash_key][range_key] = old

    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(key))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []  # [(Code, Message, Item), ..]
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get(
                "ReturnValuesOnConditionCheckFailure"
            )
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 as moto: reported per item
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


DynamoDBBackend.transact_write_items = _transact_write_items

# A read of a missing key must not write: moto's table is a defaultdict, so looking up an
# absent partition added an empty one (memory that never went away, and a change under a
# reader iterating the table).
_table_get_item = Table.get_item


def _get_item(self, hash_key, range_key=None, projection_expression=None):
    if range_key and hash_key not in self.items:
        return None
    return _table_get_item(self, hash_key, range_key, projection_expression)


Table.get_item = _get_item

# A query of the table (not an index) reads one partition, in sort key order, from a point
# on, up to a limit. moto walked every item of the table, compared each one's partition key
# and sorted the partition for every query and every page (O(table) in Python: 0.5 s at 10k
# files). Keep each partition's sort keys in order (rebuilt after a write to it) and hand
# moto's query only the items it can return: those in the key condition's range, after the
# cursor, one more than the limit (so it still knows whether a next page exists).
_orders = weakref.WeakKeyDictionary()  # table -> {partition key: (sort keys, items)}
_reading_partition = threading.local()
_table_all_items = Table.all_items
_table_query = Table.query
_table_put_item = Table.put_item
_table_delete_item = Table.delete_item
_QUERY_KWARGS = {"index_name", "consistent_read", "filter_expression", "hash_key_conditions",
                 "range_key_conditions"}  # fmt: skip


def _changed(table, hash_key):
    partitions = _orders.get(table)
    if partitions is not None:
        partitions.pop(hash_key, None)


def _put_item(self, item_attrs, *args, **kwargs):
    item = _table_put_item(self, item_attrs, *args, **kwargs)
    _changed(self, item.hash_key)
    return item


def _delete_item(self, hash_key, range_key):
    _changed(self, hash_key)
    return _table_delete_item(self, hash_key, range_key)


def _order(table, hash_key):
    partitions = _orders.setdefault(table, {})
    order = partitions.get(hash_key)
    if order is None:
        items = sorted(table.items.get(hash_key, {}).values(), key=lambda i: i.range_key.value)
        order = ([i.range_key.value for i in items], items)
        partitions[hash_key] = order
    return order


def _key_range(keys, comparison, values):
    """The slice of `keys` (sorted strings) the key condition allows; None: not handled."""
    n = len(keys)
    v = [value.value for value in values]
    if comparison is None:
        return 0, n
    if comparison == "EQ":
        return bisect.bisect_left(keys, v[0]), bisect.bisect_right(keys, v[0])
    if comparison == "LT":
        return 0, bisect.bisect_left(keys, v[0])
    if comparison == "LE":
        return 0, bisect.bisect_right(keys, v[0])
    if comparison == "GT":
        return bisect.bisect_right(keys, v[0]), n
    if comparison == "GE":
        return bisect.bisect_left(keys, v[0]), n
    if comparison == "BETWEEN":
        return bisect.bisect_left(keys, v[0]), bisect.bisect_right(keys, v[1])
    if comparison == "BEGINS_WITH" and v[0] and ord(v[0][-1]) < 0x10FFFF:
        # Every key with the prefix sorts before the prefix with its last character bumped.
        end = v[0][:-1] + chr(ord(v[0][-1]) + 1)
        return bisect.bisect_left(keys, v[0]), bisect.bisect_left(keys, end)
    return None


def _all_items(self):
    window = getattr(_reading_partition, "items", None)
    if window is not None:
        return window
    return _table_all_items(self)


def _query(self, hash_key, comparison, values, limit, start_key, forward, *args, **kwargs):
    index_name = args[1] if len(args) > 1 else kwargs.get("index_name")
    keyed = (
        index_name is None
        and hash_key is not None
        and self.range_key_attr is not None
        and self.range_key_type == "S"
        and not set(kwargs) - _QUERY_KWARGS
        and all(v.type == "S" for v in values)
    )
    bounds = _key_range(_order(self, hash_key)[0], comparison, values) if keyed else None
    if bounds is None:
        return _table_query(self, hash_key, comparison, values, limit, start_key, forward, *args, **kwargs)
    keys, items = _order(self, hash_key)
    lo, hi = bounds
    if start_key:
        after = start_key[self.range_key_attr]["S"]
        if forward is False:
            hi = min(hi, bisect.bisect_left(keys, after, lo, max(lo, hi)))
        else:
            lo = max(lo, bisect.bisect_right(keys, after, lo, max(lo, hi)))
    if limit:
        lo, hi = (lo, min(hi, lo + limit + 1)) if forward is not False else (max(lo, hi - limit - 1), hi)
    _reading_partition.items = items[lo:hi] if lo < hi else []
    try:
        return _table_query(self, hash_key, comparison, values, limit, start_key, forward, *args, **kwargs)
    finally:
        _reading_partition.items = None


Table.all_items = _all_items
Table.query = _query
Table.put_item = _put_item
Table.delete_item = _delete_item

for _name, _exclusive in (
    ("put_item", True),
    ("update_item", True),
    ("delete_item", True),
    ("transact_write_items", True),
    ("batch_write_item", True),
    ("get_item", False),
    ("query", False),
    ("scan", False),
    ("transact_get_items", False),
    ("batch_get_item", False),
):
    if hasattr(DynamoDBBackend, _name):
        setattr(
            DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name), _exclusive)
        )

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

# Persistence (with a state directory): moto keeps everything in memory and has no persistence
# of its own. At a clean stop (our stdin closes: the runner stops, or dies) and every
# SNAPSHOT_SECS while something changed, the backends (S3, DynamoDB, SQS) are pickled to
# <dir>/state.pickle (written beside, then renamed over, so a crash mid-write keeps the old
# one); each object's bytes go once to <dir>/blobs/<id>, written when the object is first
# saved and removed once no saved object refers to them. A snapshot holds back new requests
# while it pickles (it waits for those in flight), so it sees one consistent state.
_SERVICES = ("s3", "dynamodb", "sqs")
_requests = _TableLock()
_changes = 0  # requests that may have changed something, ever
_saved_changes = 0
_blob_dir = None  # set while a snapshot is written or read
_blobs_kept = set()
_READ_ONLY_TARGETS = {
    "GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "DescribeTable",
    "ListTables", "DescribeTimeToLive", "ReceiveMessage", "GetQueueUrl",
    "GetQueueAttributes", "ListQueues",
}  # fmt: skip


def _may_change(environ):
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return False
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target.rsplit(".", 1)[-1] not in _READ_ONLY_TARGETS


def _gated(app):
    def serve(environ, start_response):
        def respond():
            global _changes
            if _may_change(environ):
                _changes += 1
            # Read the whole answer inside, so no request runs while a snapshot pickles.
            return list(app(environ, start_response))

        return _requests.run(False, respond)

    return serve


_key_getstate = s3_models.FakeKey.__getstate__
_key_setstate = s3_models.FakeKey.__setstate__
_key_value = s3_models.FakeKey.value


def _set_value(self, new_value):
    _key_value.fset(self, new_value)
    self._blob_id = None  # new bytes: the next snapshot writes a blob for them


def _getstate(self):
    if _blob_dir is None:  # moto's own copies (deepcopy) keep the bytes inline
        return _key_getstate(self)
    blob_id = getattr(self, "_blob_id", None)
    if blob_id is None and not self._value_buffer.closed:
        blob_id = uuid.uuid4().hex
        tmp = os.path.join(_blob_dir, blob_id + ".tmp")
        with self.lock, open(tmp, "wb") as out:
            self._value_buffer.seek(0)
            shutil.copyfileobj(self._value_buffer, out, 16 * 1024 * 1024)
        os.replace(tmp, os.path.join(_blob_dir, blob_id))
        self._blob_id = blob_id
    # A disposed key (a deleted object, the parts of a completed upload) has no bytes left.
    if blob_id is not None:
        _blobs_kept.add(blob_id)
    state = self.__dict__.copy()
    state["_blob_id"] = blob_id
    del state["_value_buffer"]
    del state["lock"]
    return state


def _setstate(self, state):
    if "value" in state:
        return _key_setstate(self, state)
    self.__dict__.update(state)
    self._value_buffer = tempfile.SpooledTemporaryFile(max_size=self._max_buffer_size)
    blob_id = state.get("_blob_id")
    if blob_id is not None:
        with open(os.path.join(_blob_dir, blob_id), "rb") as blob:
            shutil.copyfileobj(blob, self._value_buffer, 16 * 1024 * 1024)
    self.lock = threading.Lock()


s3_models.FakeKey.value = _key_value.setter(_set_value)
s3_models.FakeKey.__getstate__ = _getstate
s3_models.FakeKey.__setstate__ = _setstate


def _rebuilt(cls, items, attrs):
    rebuilt = cls.__new__(cls)
    for name, value in items:
        dict.__setitem__(rebuilt, name, value)
    rebuilt.__dict__.update(attrs)
    return rebuilt


def _as_plain_dict(value):
    return _rebuilt, (type(value), list(dict.items(value)), dict(vars(value)))


def _locks_as_new(pickler):
    # Locks and conditions (SQS queues hold one) are not state: a loaded queue gets new ones.
    table = copyreg.dispatch_table.copy()
    table[threading.Condition] = lambda _: (threading.Condition, ())
    table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    table[type(threading.RLock())] = lambda _: (threading.RLock, ())
    # Pickle restores a dict by setting each item again, through the class's __setitem__:
    # a bucket's keys (a dict of version lists) would nest each list in another, and an
    # item's attributes (a dict that sums its own size on each set) cost O(n^2). Restore
    # both as the plain dicts they hold.
    table[s3_utils._VersionedKeyStore] = _as_plain_dict
    table[LimitedSizeDict] = _as_plain_dict
    pickler.dispatch_table = table
    return pickler


def _load(state_dir):
    global _blob_dir
    path = os.path.join(state_dir, "state.pickle")
    if not os.path.exists(path):
        return
    _blob_dir = os.path.join(state_dir, "blobs")
    gc.disable()  # it would walk the growing heap again and again while millions of objects load
    try:
        with open(path, "rb") as f:
            saved = pickle.load(f)
    finally:
        _blob_dir = None
        gc.enable()
    for name in _SERVICES:
        backends = get_backend(name)
        backends.clear()
        backends.update(saved[name])
    get_backend("s3").bucket_accounts.update(saved["s3_bucket_accounts"])


def _save(state_dir):
    """Writes a snapshot if anything may have changed since the last; returns its size."""
    global _blob_dir, _saved_changes
    blobs = os.path.join(state_dir, "blobs")
    os.makedirs(blobs, exist_ok=True)
    buffer = io.BytesIO()

    def pickle_all():
        global _blob_dir
        if _changes == _saved_changes:
            return None
        _blob_dir = blobs
        _blobs_kept.clear()
        gc.disable()
        try:
            state = {name: dict(get_backend(name)) for name in _SERVICES}
            # Which account owns each bucket is kept beside the backends, not in them.
            state["s3_bucket_accounts"] = dict(get_backend("s3").bucket_accounts)
            _locks_as_new(pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)).dump(state)
        finally:
            _blob_dir = None
            gc.enable()
        return _changes

    changes = _requests.run(True, pickle_all)
    if changes is None:
        return None
    tmp = os.path.join(state_dir, "state.pickle.tmp")
    with open(tmp, "wb") as f:
        f.write(buffer.getbuffer())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(state_dir, "state.pickle"))
    for name in os.listdir(blobs):
        if name not in _blobs_kept:
            os.remove(os.path.join(blobs, name))
    _saved_changes = changes
    return buffer.tell()


def _snapshots(state_dir, every):
    while True:
        time.sleep(every)
        started = time.monotonic()
        try:
            size = _save(state_dir)
        except Exception as e:  # noqa: BLE001 a failed snapshot must not stop the emulator
            print(f"snapshot failed: {e!r}", file=sys.stderr, flush=True)
            continue
        if size is not None:
            seconds = time.monotonic() - started
            print(f"SNAPSHOT {size} bytes in {seconds:.3f} s", file=sys.stderr, flush=True)


# S3 checks the signature of a presigned request against the request actually sent: the
# signed headers' values (Content-Length among them when a part URL signs it), the path, the
# query, the expiry. moto accepts any presigned URL whatever its signature, so a part of the
# wrong length would pass here and fail on AWS. Verify the SigV4 query signature for real,
# with the credentials the runner gives us (FILESTORE_EMULATOR_CREDENTIALS, "id:secret"
# lines), and refuse as S3 does: 403 with S3's error body. Requests signed in the
# Authorization header (the SDK's own calls) pass as before.
_CREDENTIALS = dict(
    line.split(":", 1)
    for line in os.environ.get("FILESTORE_EMULATOR_CREDENTIALS", "").splitlines()
    if ":" in line
)
_UNRESERVED = "-_.~"


def _header(environ, name):
    if name == "content-length":
        value = environ.get("CONTENT_LENGTH")
    elif name == "content-type":
        value = environ.get("CONTENT_TYPE")
    else:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return " ".join((value or "").split())


def _hmac(key, message):
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _presign_refusal(environ):
    """None if the request carries no query signature or a valid one, else (code, message)."""
    query = environ.get("QUERY_STRING", "")
    # A CORS preflight carries the URL but is answered from the bucket's rules, unsigned.
    if "X-Amz-Signature=" not in query or environ["REQUEST_METHOD"] == "OPTIONS":
        return None
    pairs = []
    params = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = unquote(name), unquote(value)
        params[name] = value
        if name != "X-Amz-Signature":
            pairs.append((quote(name, safe=_UNRESERVED), quote(value, safe=_UNRESERVED)))
    try:
        credential = params["X-Amz-Credential"].split("/")
        access_key, scope = credential[0], "/".join(credential[1:])
        date = params["X-Amz-Date"]
        signed = params["X-Amz-SignedHeaders"].split(";")
        expires = int(params["X-Amz-Expires"])
        signature = params["X-Amz-Signature"]
        if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" or len(credential) != 5:
            raise ValueError
        signed_at = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ")
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError", "Malformed query-string authentication."
    secret = _CREDENTIALS.get(access_key)
    if secret is None:
        return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist."
    signed_at = signed_at.replace(tzinfo=datetime.timezone.utc)
    if datetime.datetime.now(datetime.timezone.utc) > signed_at + datetime.timedelta(seconds=expires):
        return "AccessDenied", "Request has expired"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    path = quote(unquote(raw.split("?", 1)[0]), safe="/" + _UNRESERVED)
    payload = _header(environ, "x-amz-content-sha256") or "UNSIGNED-PAYLOAD"
    canonical = "\n".join([
        environ["REQUEST_METHOD"],
        path,
        "&".join(f"{k}={v}" for k, v in sorted(pairs)),
        "".join(f"{name}:{_header(environ, name)}\n" for name in signed),
        ";".join(signed),
        payload,
    ])  # fmt: skip
    to_sign = "\n".join([
        "AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()
    ])  # fmt: skip
    key = ("AWS4" + secret).encode()
    for step in credential[1:]:
        key = _hmac(key, step)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return (
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


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
