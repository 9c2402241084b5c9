#!/usr/bin/python3
"""Debian's python3-socketio client for the integration suite.

usage: py_client.py URL ROOM TRANSPORTS   (TRANSPORTS: "default", "polling" or "websocket")
Connects, joins ROOM with an ack, prints one JSON line per step ({"joined":...}, then the first
room:message as {"message":...} and {"transport":...}), then disconnects. Exits 1 on a timeout.
"""
import json
import sys
import threading

import socketio

url, room, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sio = socketio.Client(reconnection=False)
got = threading.Event()


def say(obj):
    print(json.dumps(obj), flush=True)


@sio.on('room:message')
def on_message(msg):
    say({'message': msg})
    got.set()


kwargs = {'wait_timeout': 5}
if mode != 'default':
    kwargs['transports'] = [mode]
sio.connect(url, **kwargs)
say({'joined': sio.call('join-room', room, timeout=5)})
ok = got.wait(15)
say({'transport': sio.transport()})
sio.disconnect()
sys.exit(0 if ok else 1)
