"""Concurrent populate, reset, update and delete on the bundled Toxiproxy from 20 threads:
afterwards every listening socket of the server is one the API lists (none leaked)."""
from __future__ import annotations

import json
import random
import threading
import urllib.request

from comfy_chaos.fake_comfy.testing.resources import listening as _listening
from comfy_chaos.harness.toxiproxy.fixtures import LoopThread
from comfy_chaos.harness.toxiproxy.server import ToxiproxyServer

THREADS = 20
ROUNDS = 15
NAMES = ["a", "b", "c"]


def _call(url: str, method: str, path: str, body: object = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={"User-Agent": "races"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _worker(url: str, seed: int, errors: list[str]) -> None:
    rng = random.Random(seed)  # seeded: a failure names the seeds
    for _ in range(ROUNDS):
        action = rng.choice(["populate", "reset", "update", "delete", "create"])
        name = rng.choice(NAMES)
        if action == "populate":
            body = [{"name": n, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"} for n in NAMES]
            status = _call(url, "POST", "/populate", body)
        elif action == "reset":
            status = _call(url, "POST", "/reset")
        elif action == "update":
            status = _call(url, "POST", f"/proxies/{name}", {"listen": "127.0.0.1:0", "enabled": rng.random() < 0.7})
        elif action == "delete":
            status = _call(url, "DELETE", f"/proxies/{name}")
        else:
            status = _call(url, "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"})
        if status >= 500:
            errors.append(f"{action} {name}: {status}")


def test_concurrent_populate_and_reset_leak_no_listener() -> None:
    thread = LoopThread("races")
    thread.start()
    server = ToxiproxyServer(seed=1)
    try:
        before = set(_listening())
        url = thread.run(server.start(), 10)
        errors: list[str] = []
        workers = [threading.Thread(target=_worker, args=(url, seed, errors)) for seed in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert not any(w.is_alive() for w in workers), "a worker hung"
        assert not errors, errors
        with urllib.request.urlopen(urllib.request.Request(url + "/proxies", headers={"User-Agent": "races"})) as resp:
            listed = json.loads(resp.read())
        api_port = url.rsplit(":", 1)[1]
        expected = {p["listen"] for p in listed.values() if p["enabled"]} | {f"127.0.0.1:{api_port}"}
        leaked = set(_listening()) - before - expected
        assert not leaked, f"listeners the API does not list (seeds 0..{THREADS - 1}): {sorted(leaked)}"
    finally:
        thread.run(server.stop(), 30)
        thread.stop()
