#!/usr/bin/python3
"""A back end written with Debian's python3-redis, for the integration suite.

usage: py_redis.py ADDR COMMAND ARGS...      (ADDR: PORT, or cluster:HOST:PORT for a Redis Cluster)
  consume STREAM GROUP CONSUMER COUNT MS   XREADGROUP (group created at 0 when missing) until COUNT
                                           entries came or MS passed; XACKs each; prints a JSON
                                           list of [id, {field: value}]
  range STREAM                             XRANGE - +, same output
  poison STREAM GROUP CONSUMER N           a consumer that keeps failing: XADD one entry, then
                                           read it N times (once new, then as its own pending
                                           entry) without acknowledging it; prints {"id": ...}
Values are decoded as UTF-8 (invalid bytes as U+FFFD). Exits 1 on a Redis error.
"""
import json
import sys
import time

import redis

addr, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if addr.startswith('cluster:'):
    _, host, port = addr.split(':')
    r = redis.cluster.RedisCluster(host=host, port=int(port))
else:
    r = redis.Redis(host='127.0.0.1', port=int(addr))


def text(b):
    return b.decode('utf-8', errors='replace')


def entries(items):
    return [[text(i), {text(k): text(v) for k, v in f.items()}] for i, f in items]


def ensure_group(stream, group):
    try:
        r.xgroup_create(stream, group, id='0', mkstream=True)
    except redis.ResponseError as e:
        if 'BUSYGROUP' not in str(e):
            raise


if cmd == 'consume':
    stream, group, consumer, count, ms = args[0], args[1], args[2], int(args[3]), int(args[4])
    ensure_group(stream, group)
    got = []
    end = time.monotonic() + ms / 1000
    while len(got) < count and time.monotonic() < end:
        left = max(1, int((end - time.monotonic()) * 1000))
        res = r.xreadgroup(group, consumer, {stream: '>'}, count=count - len(got), block=min(left, 500))
        for _, items in res or []:
            for i, _f in items:
                r.xack(stream, group, i)
            got.extend(entries(items))
    print(json.dumps(got), flush=True)
elif cmd == 'range':
    print(json.dumps(entries(r.xrange(args[0]))), flush=True)
elif cmd == 'poison':
    stream, group, consumer, n = args[0], args[1], args[2], int(args[3])
    ensure_group(stream, group)
    entry_id = r.xadd(stream, {'event': 'poison', 'data': '{"crash":true}'})
    r.xreadgroup(group, consumer, {stream: '>'}, count=1)
    for _ in range(n - 1):
        r.xreadgroup(group, consumer, {stream: '0'}, count=1)
    print(json.dumps({'id': text(entry_id)}), flush=True)
else:
    sys.exit('unknown command ' + cmd)
