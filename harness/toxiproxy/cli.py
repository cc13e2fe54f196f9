"""``comfy-chaos toxiproxy``: run the bundled Toxiproxy-compatible server standalone.

Accepts Toxiproxy's own flag spelling too (``-host``, ``-port``, ``-config``, ``-seed``),
so it can stand in for ``toxiproxy-server``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import NoReturn

import structlog

from comfy_chaos.harness.toxiproxy.server import VERSION, ToxiproxyServer

log = structlog.get_logger(__name__)
READY_PREFIX = "comfy-chaos toxiproxy listening on "


class _Parser(argparse.ArgumentParser):
    """A bad flag is a usage error: exit 3 with one line, like every comfy-chaos command."""

    def error(self, message: str) -> NoReturn:
        self.exit(3, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="comfy-chaos toxiproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--host", "-host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", "-port", type=int, default=8474, help="API port (default 8474; 0 = ephemeral)")
    parser.add_argument("--seed", "-seed", type=int, default=None,
                        help="seed for toxicity, jitter and slicer draws (real Toxiproxy ignores its -seed)")
    parser.add_argument("--config", "-config", default=None, help="JSON array of proxies, as for POST /populate")
    parser.add_argument("--version", "-version", action="store_true", help="print the API version and exit")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    server = ToxiproxyServer(seed=args.seed)
    try:
        url = await server.start(args.host, args.port)
    except OSError as exc:
        print(f"comfy-chaos toxiproxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.config:
            await _populate_from(server, args.config)
        print(READY_PREFIX + url, flush=True)
        await stop.wait()
    finally:
        await server.stop()
    return 0


async def _populate_from(server: ToxiproxyServer, path: str) -> None:
    """Apply a -config file like Toxiproxy: errors are logged, the server keeps running."""
    try:
        with open(path, "rb") as handle:
            body = handle.read()
    except OSError as exc:
        log.error("toxiproxy.config.unreadable", config=path, error=str(exc))
        return
    response = await server.populate(None, body)  # type: ignore[arg-type]
    assert isinstance(response.body, bytes)  # a json_response's body
    result = json.loads(response.body)
    if "error" in result:
        log.error("toxiproxy.config.failed", config=path, error=result["error"])
    else:
        log.info("toxiproxy.config.applied", config=path, proxies=len(result["proxies"] or []))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.version:
        print(VERSION)
        return 0
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
