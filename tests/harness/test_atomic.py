"""Report files are written atomically, with a normal mode, and leave no temporaries
behind: not on a failed write, not after a writer killed in the middle."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from comfy_chaos.harness.atomic import write_atomic
from comfy_chaos.harness.report import write_html_report
from comfy_chaos.harness.results import ResultsFile, save_results


def test_results_and_index_html_get_the_mode_a_plain_write_gets(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        results = save_results(tmp_path / "results.json", ResultsFile(run={}, results=[]))
        html = write_html_report(tmp_path, ResultsFile(run={}, results=[]))
    finally:
        os.umask(old)
    assert oct(results.stat().st_mode & 0o777) == oct(0o644)
    assert oct(html.stat().st_mode & 0o777) == oct(0o644)
    assert html.read_text().startswith("<!doctype html>") or "<html" in html.read_text()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from comfy_chaos.harness import atomic

    target = tmp_path / "results.json"
    target.write_text("old")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError):
        save_results(target, ResultsFile(run={}, results=[]))
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".index.html.{pid}.0123abcd.tmp"
    stale.write_text("<html>half")
    other = tmp_path / f".results.json.{pid}.0123abcd.tmp"
    other.write_text("{")
    write_atomic(tmp_path / "index.html", "<html>whole</html>")
    assert not stale.exists()
    assert other.exists()  # another file's temporary: left for that file's next write
    write_atomic(tmp_path / "results.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "results.json"]


def test_index_html_is_never_seen_half_written(tmp_path: Path) -> None:
    """The page is replaced in one rename: its inode changes, the old one stays whole."""
    first = write_html_report(tmp_path, ResultsFile(run={}, results=[]))
    before = first.read_text()
    handle = first.open()
    write_html_report(tmp_path, ResultsFile(run={"note": "second"}, results=[]))
    assert handle.read() == before  # a reader of the old file still reads all of it
    handle.close()
