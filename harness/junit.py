"""JUnit XML for CI systems that display test results: one testcase per run.

fail → <failure>, inconclusive → <skipped type="inconclusive"> (or <error> when the run is
gated on inconclusive), an unusable scenario file → <error type="invalid-scenario">."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from comfy_chaos.harness.results import ScenarioResult


def junit_xml(results: Iterable[ScenarioResult], *, broken: Iterable[tuple[str, str]] = (),
              inconclusive_is_error: bool = False, suite: str = "comfy-chaos") -> bytes:
    """`broken`: (path, error) per scenario file that could not be loaded."""
    results = list(results)
    broken = list(broken)
    root = ET.Element("testsuites")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    element = ET.SubElement(root, "testsuite", name=suite)
    for result in results:
        case = ET.SubElement(element, "testcase", classname=f"{suite}.{result.scenario}",
                             name=f"{result.scenario}[{result.client}] seed {result.seed}",
                             time=f"{result.duration:.3f}")
        if result.source:
            case.set("file", result.source)
        counts["tests"] += 1
        text = "\n".join(result.reasons) + f"\nreplay: {result.replay}"
        if result.verdict == "fail":
            counts["failures"] += 1
            ET.SubElement(case, "failure", type="fail", message=_first(result.reasons)).text = text
        elif result.verdict == "inconclusive":
            tag = "error" if inconclusive_is_error else "skipped"
            counts["errors" if inconclusive_is_error else "skipped"] += 1
            ET.SubElement(case, tag, type="inconclusive", message="inconclusive: " + _first(result.reasons)).text = text
    for path, error in broken:
        case = ET.SubElement(element, "testcase", classname=f"{suite}.invalid", name=str(path), file=str(path))
        counts["tests"] += 1
        counts["errors"] += 1
        ET.SubElement(case, "error", type="invalid-scenario", message=_first(error.splitlines())).text = error
    for key, value in counts.items():
        element.set(key, str(value))
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _first(lines: list[str]) -> str:
    return lines[0] if lines else ""


def write_junit(path: str | Path, data: bytes) -> Path:
    """Write atomically (a CI step reading it never sees half a file)."""
    from comfy_chaos.harness.atomic import write_atomic

    return write_atomic(path, data)
