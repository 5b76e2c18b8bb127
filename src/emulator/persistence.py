# The launcher, part 3 of 5: saving moto's state to a directory and loading it back.
import copyreg
import gc
import io
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
import uuid

from moto.dynamodb.models.dynamo_type import LimitedSizeDict
from moto.s3 import models as s3_models
from moto.s3 import utils as s3_utils
from moto.backends import get_backend

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
