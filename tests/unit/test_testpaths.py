"""Every test file in the repository is collected by `make test` (pytest's `testpaths` list them in order)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_file_is_under_a_testpath() -> None:
    """A folder of tests added beside the listed ones would otherwise never run in CI (as auth, letters and trust did not)."""
    listed = [
        ROOT / p
        for p in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    ]
    files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("services/*/tests/**/test_*.py")]
    missed = sorted(str(f.relative_to(ROOT)) for f in files if not any(f == t or t in f.parents for t in listed))
    assert files
    assert missed == []
