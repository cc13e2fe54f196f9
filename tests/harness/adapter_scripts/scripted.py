"""A JSON-lines adapter for tests that needs no server; behaviour chosen by argv[1].

ok       ready; per task: submitted + result success; done after end
crash    ready; exits with code 3 on the first task (message on stderr)
hang     ready; starts a grandchild, never sends done, ignores stdin closing
garbage  ready; then a line that is not JSON
burn     like ok, but burns ~0.3 s of CPU first
unscalable  like ok, but its ready line says "scalable": false
fixed    like ok, but waits a fixed 1 s (real, whatever the time scale) before each result
words    like ok, but says things: a note, t0 as an error with a detail, lines on stderr
"""
import json
import subprocess
import sys
import time

mode = sys.argv[1]


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


start = json.loads(sys.stdin.readline())
assert start["type"] == "start", start
if mode == "burn":
    t = time.process_time()
    while time.process_time() - t < 0.3:
        pass
ready = {"type": "ready", "client": f"scripted-{mode}", "version": "1", "caps": []}
if mode == "unscalable":
    ready["scalable"] = False
emit(ready)
if mode == "garbage":
    sys.stdout.write("this is not json\n")
    sys.stdout.flush()
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    emit({"type": "note", "text": f"grandchild {child.pid}"})
for line in sys.stdin:
    message = json.loads(line)
    if message["type"] == "task":
        if mode == "crash":
            sys.stderr.write("scripted adapter: deliberate crash\n")
            sys.exit(3)
        n = message["task_id"][1:]
        emit({"type": "submitted", "task_id": message["task_id"], "prompt_id": f"p{n}"})
        if mode == "fixed":
            time.sleep(1.0)  # the client's own fixed timer (a 1 s receive timeout, say)
        if mode == "words" and n == "0":
            sys.stderr.write("scripted adapter: websocket closed (1006), giving up on t0\n" * 3)
            sys.stderr.flush()
            emit({"type": "note", "text": "reconnect 1 of 5 failed: connection refused"})
            emit({"type": "result", "task_id": "t0", "prompt_id": "p0", "outcome": "error", "outputs": None,
                  "detail": "ended expired: no status for p0 within 5 s"})
            continue
        emit({"type": "result", "task_id": message["task_id"], "prompt_id": f"p{n}", "outcome": "success",
              "outputs": {"9": {"images": []}}, "detail": None})
    elif message["type"] == "end":
        if mode == "hang":
            break
        emit({"type": "stats", "counters": {"reconnects": 0, "polls": 2}})
        emit({"type": "done"})
if mode == "hang":
    while True:
        time.sleep(600)
