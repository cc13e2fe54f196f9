"""A JSON-lines client adapter that misbehaves in the way chosen by argv[1]; used by
test_bounded.py. Each mode says `ready` first (so the harness is past start-up) and
then never finishes on its own:

hang          stops reading stdin, ignores SIGTERM and SIGINT, sleeps forever
spin          burns the CPU in a busy loop forever (ignores SIGTERM)
flood_stdout  writes `note` lines as fast as it can, forever
flood_server  hammers the server with GET /queue on 8 threads, forever, and starts a
              grandchild that does the same (the whole process group must go)
huge_line     writes one line longer than the harness's line limit, then hangs
"""
import json
import signal
import sys
import threading
import time
import urllib.request

mode = sys.argv[1]


def hammer(url: str) -> None:
    while True:
        try:
            with urllib.request.urlopen(url + "/queue", timeout=5) as resp:
                resp.read()
        except Exception:  # noqa: BLE001 - a flood does not care
            time.sleep(0.001)


if mode == "flood_server_child":  # the grandchild: no JSON lines, just load
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    hammer(sys.argv[2])

start = json.loads(sys.stdin.readline())
assert start["type"] == "start", start
sys.stdout.write(json.dumps({"type": "ready", "client": f"misbehave-{mode}", "version": "1", "caps": []}) + "\n")
sys.stdout.flush()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)

if mode == "hang":
    while True:
        time.sleep(3600)
elif mode == "spin":
    while True:
        pass
elif mode == "flood_stdout":
    line = json.dumps({"type": "note", "text": "x" * 200}) + "\n"
    while True:
        sys.stdout.write(line * 100)
elif mode == "flood_server":
    import subprocess

    subprocess.Popen([sys.executable, __file__, "flood_server_child", start["base_url"]], stdin=subprocess.DEVNULL)
    for _ in range(8):
        threading.Thread(target=hammer, args=(start["base_url"],), daemon=True).start()
    while True:
        time.sleep(3600)
elif mode == "huge_line":
    sys.stdout.write('{"type": "note", "text": "' + "y" * (17 * 1024 * 1024) + '"}\n')
    sys.stdout.flush()
    while True:
        time.sleep(3600)
