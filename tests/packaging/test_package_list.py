"""pyproject.toml lists every Python package of the three code folders (a folder left out
would be missing from the wheel, though an editable install still finds it)."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_and_every_listed_one_exists() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), "packages missing from pyproject.toml [tool.setuptools] packages"
    assert {p for p in listed if not (ROOT / mapping.get(p, "")).is_dir() and p not in found} == set()
