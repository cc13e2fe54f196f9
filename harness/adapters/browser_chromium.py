"""One headless Chromium for the whole harness process, and the frontend files it shows.

`SharedChromium` starts the system Chromium once (`/usr/bin/chromium`, or
`$COMFY_CHAOS_CHROMIUM`) with a DevTools port on loopback and a fresh profile folder; every
run connects to it with Playwright (`connect_over_cdp`) and gets its own browser context,
so runs share the process (page loads stay fast) but no storage. The process is killed
when the harness exits (atexit, and the kernel's parent-death signal if the harness is
killed outright), and its profile folder removed.

`frontend_static(version)` gives the `static/` folder of PyPI `comfyui-frontend-package`
at that version, downloaded once with pip into `~/.cache/comfy-chaos/frontend/<version>/`
(`$COMFY_CHAOS_CACHE` moves the cache).
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    # Loopback only: a page asking the internet for something (release notes, fonts, cloud
    # sign-in) fails at once instead of waiting for a resolver.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]
START_TIMEOUT_S = 30.0
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
PACKAGE = "comfyui-frontend-package"


class BrowserUnavailable(RuntimeError):
    """No Chromium, no Playwright, or no frontend files: the browser clients cannot run."""


def chromium_path() -> str:
    configured = os.environ.get("COMFY_CHAOS_CHROMIUM")
    for candidate in ([configured] if configured else []) + ["/usr/bin/chromium", "chromium", "chromium-browser"]:
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None)
        if found:
            return found
    raise BrowserUnavailable(
        "no Chromium found (looked for $COMFY_CHAOS_CHROMIUM, /usr/bin/chromium, chromium on PATH); "
        "install it with: apt-get install -y chromium"
    )


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class SharedChromium:
    """The harness process's Chromium (started on first use, stopped at exit)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.profile: str | None = None
        self.endpoint: str | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self) -> str:
        """The DevTools endpoint (`http://127.0.0.1:PORT`), starting Chromium if needed."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:
            if self.proc is not None and self.proc.poll() is None and self.endpoint is not None:
                return self.endpoint
            self.close()
            return await self._start()

    async def _start(self) -> str:
        binary = chromium_path()
        self.profile = tempfile.mkdtemp(prefix="comfy-chaos-chromium-")
        argv = [binary, *CHROMIUM_ARGS, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "about:blank"]  # fmt: skip
        self.proc = subprocess.Popen(  # started on the loop thread: the death signal follows it
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.close()
                raise BrowserUnavailable(f"{binary} exited at start (code {code})")
            text = port_file.read_text() if port_file.is_file() else ""
            if text.strip():
                self.endpoint = f"http://127.0.0.1:{text.split()[0]}"
                return self.endpoint
            await asyncio.sleep(0.05)  # polling a file Chromium writes; bounded by the deadline
        self.close()
        raise BrowserUnavailable(f"{binary} did not open its DevTools port within {START_TIMEOUT_S:.0f} s")

    def pids(self) -> list[int]:
        """Chromium's process tree (browser, renderers, utilities)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        tree, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{parent}/task"):
                    with contextlib.suppress(OSError):
                        children = Path(f"/proc/{parent}/task/{tid}/children").read_text().split()
                        for child in map(int, children):
                            tree.append(child)
                            frontier.append(child)
        return tree

    def usage(self) -> tuple[float, int]:
        """(CPU seconds, resident bytes) summed over the process tree right now."""
        ticks = os.sysconf("SC_CLK_TCK")
        page = os.sysconf("SC_PAGE_SIZE")
        cpu, rss = 0.0, 0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu += (int(fields[11]) + int(fields[12])) / ticks
                rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        return cpu, rss

    def close(self) -> None:
        proc, self.proc, self.endpoint = self.proc, None, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None


SHARED = SharedChromium()
atexit.register(SHARED.close)


# ---- frontend files ---------------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("COMFY_CHAOS_CACHE") or Path.home() / ".cache" / "comfy-chaos") / "frontend"


def frontend_static(version: str) -> Path:
    """`static/` of comfyui-frontend-package==version, downloaded (pip) and unpacked on first use.

    Blocking (pip and unzip): call it in a thread. Raises BrowserUnavailable with the pip
    command to run by hand when the download fails (offline, unknown version)."""
    if not VERSION_RE.match(version):
        raise BrowserUnavailable(f"frontend version {version!r}: expected MAJOR.MINOR.PATCH, e.g. 1.27.10")
    root = cache_dir() / version
    static = root / "static"
    if (static / "index.html").is_file():
        return static
    root.mkdir(parents=True, exist_ok=True)
    wheels = sorted(root.glob("comfyui_frontend_package-*.whl"))
    if not wheels:
        command = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={version}", "--no-deps",
                   "--only-binary=:all:", "--quiet", "--disable-pip-version-check", "-d", str(root)]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as exc:
            raise BrowserUnavailable(f"pip download {PACKAGE}=={version} took over 600 s") from exc
        wheels = sorted(root.glob("comfyui_frontend_package-*.whl"))
        if done.returncode != 0 or not wheels:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise BrowserUnavailable(
                f"cannot download {PACKAGE}=={version} (offline?): {' / '.join(tail)}; "
                f"fetch it by hand with: pip download {PACKAGE}=={version} --no-deps -d {root}"
            )
    unpack = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        with zipfile.ZipFile(wheels[-1]) as wheel:
            prefix = "comfyui_frontend_package/static/"
            members = [name for name in wheel.namelist() if name.startswith(prefix)]
            if not members:
                raise BrowserUnavailable(f"{wheels[-1]}: no {prefix} in the wheel")
            wheel.extractall(unpack, members)
        if not static.exists():
            (unpack / prefix).rename(static)
    except zipfile.BadZipFile as exc:
        wheels[-1].unlink(missing_ok=True)
        raise BrowserUnavailable(f"{wheels[-1]}: not a wheel ({exc}); removed, try again") from exc
    finally:
        shutil.rmtree(unpack, ignore_errors=True)
    for wheel_file in wheels:
        wheel_file.unlink(missing_ok=True)  # the unpacked folder is what is used
    return static
