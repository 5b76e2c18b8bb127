"""Ranged-GET throughput of an S3 endpoint, straight to it (no proxy): puts one object of
SIZE_MIB, then reads it whole (one GET), in ranges of PART_MIB one after another, and in the
same ranges CONCURRENCY at a time, checking every byte. Prints MB/s (10^6 bytes) of each, the
median of ROUNDS, and deletes the object.

python bench/ranged_gets.py ENDPOINT [SIZE_MIB (256)] [PART_MIB (8)] [CONCURRENCY (8)] [ROUNDS (3)]

Needs boto3 (the emulator's venv has it); the endpoint's credentials in AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (default test/test).
"""

import concurrent.futures
import os
import statistics
import sys
import time
import uuid

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
size_mib, part_mib, concurrency, rounds = (
    int(a) for a in (sys.argv[2:] + ["256", "8", "8", "3"][len(sys.argv) - 2 :])
)
size, part = size_mib << 20, part_mib << 20
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    config=Config(
        max_pool_connections=concurrency,
        s3={"addressing_style": "path"},
        response_checksum_validation="when_required",
    ),
)
bucket, key = f"ranged-gets-{uuid.uuid4().hex[:12]}", "object.bin"
data = os.urandom(size)
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key=key, Body=data)


def get(first, last):
    got = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")["Body"].read()
    if got != data[first : last + 1]:
        sys.exit(f"bytes {first}-{last}: wrong bytes")
    return len(got)


ranges = [(at, min(at + part, size) - 1) for at in range(0, size, part)]
ways = {
    "whole object, 1 GET": lambda: get(0, size - 1),
    f"{len(ranges)} ranges of {part_mib} MiB, one at a time": lambda: sum(
        get(*r) for r in ranges
    ),
    f"{len(ranges)} ranges of {part_mib} MiB, {concurrency} at a time": lambda: sum(
        concurrent.futures.ThreadPoolExecutor(concurrency).map(lambda r: get(*r), ranges)
    ),
}
rates = {name: [] for name in ways}
try:
    for _ in range(rounds):
        for name, read in ways.items():
            start = time.monotonic()
            assert read() == size
            rates[name].append(size / (time.monotonic() - start) / 1e6)
finally:
    s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
print(f"ranged GETs straight to {endpoint}, {size_mib} MiB object, median of {rounds}:")
for name, values in rates.items():
    print(f"  {name:<40} {statistics.median(values):7.1f} MB/s ({min(values):.1f}-{max(values):.1f})")
