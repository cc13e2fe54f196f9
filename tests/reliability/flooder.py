"""A JSON-lines client adapter that floods `submitted`, `result` and `stats` lines, then says
`done`; used by test_flood.py. argv[1] = how many of each."""
import json
import sys

count = int(sys.argv[1])
start = json.loads(sys.stdin.readline())
out = sys.stdout
out.write(json.dumps({"type": "ready", "client": "flooder", "version": "1", "caps": []}) + "\n")
big = {"9": {"images": [{"filename": "x" * 100, "subfolder": "", "type": "output"}] * 3000}}
for i in range(count):  # stats and submitted first: the results end the run once every task is reported
    out.write(json.dumps({"type": "stats", "counters": {f"k{j}": j for j in range(100)}}) + "\n")
for i in range(count):
    out.write(json.dumps({"type": "submitted", "task_id": f"t{i % 3}", "prompt_id": f"p{i}"}) + "\n")
for i in range(count):
    out.write(json.dumps({"type": "result", "task_id": f"t{i % 3}", "prompt_id": f"p{i}", "outcome": "success",
                          "outputs": big if i == 0 else {}, "detail": "d" * 10_000}) + "\n")
out.write(json.dumps({"type": "done"}) + "\n")
out.flush()
