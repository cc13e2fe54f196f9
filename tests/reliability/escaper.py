"""A JSON-lines client adapter that is hard to stop; used by test_signals.py.

It says `ready`, ignores SIGTERM and SIGINT, and starts two grandchildren that ignore them
too: one stays in the adapter's process group, the other leaves it with setsid() (a
process-group kill misses it). Every process carries argv[1] (a marker) in its command
line, so the test can find them all. Then it sleeps forever without reporting anything.
"""
import json
import os
import signal
import subprocess
import sys
import time

marker = sys.argv[1]
role = sys.argv[2] if len(sys.argv) > 2 else "adapter"
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)

if role == "grandchild":
    while True:
        time.sleep(3600)
if role == "escaper":
    os.setsid()
    while True:
        time.sleep(3600)

start = json.loads(sys.stdin.readline())
for kind in ("grandchild", "escaper"):
    subprocess.Popen([sys.executable, __file__, marker, kind], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
sys.stdout.write(json.dumps({"type": "ready", "client": "escaper", "version": "1", "caps": []}) + "\n")
sys.stdout.flush()
while True:
    time.sleep(3600)
