# The launcher, part 1 of 5 (src/emulator.rs runs the parts as one script, in order):
# moto's DynamoDB made to keep DynamoDB's promises (isolation, reads that write nothing) at
# the speed a local run needs.
import bisect
import copy
import functools
import inspect
import threading
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
from moto.dynamodb.models.table import Table
from moto.dynamodb.comparisons import get_filter_expression

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
            conditioned = {
                "condition_expression": condition_expression,
                "expression_attribute_names": expression_attribute_names,
                "expression_attribute_values": expression_attribute_values,
            }
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **conditioned)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **conditioned)
            elif op_type == "Update":
                self.update_item(
                    table_name, key, update_expression=op["UpdateExpression"], **conditioned
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
