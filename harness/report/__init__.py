"""Reports of scored runs: one self-contained HTML page, a terminal table, a matrix.

All renderers take many `ScenarioResult`s (a suite run, or `comfy-chaos bench`'s
scenarios × clients) and are pure: text in, text out; `write_html_report` is the only I/O.
"""
from comfy_chaos.harness.report.html import render_html, write_html_report
from comfy_chaos.harness.report.matrix import Cell, build_matrix, render_matrix
from comfy_chaos.harness.report.terminal import render_summary

__all__ = ["Cell", "build_matrix", "render_html", "render_matrix", "render_summary", "write_html_report"]
