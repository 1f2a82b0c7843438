"""Helpers for the backbone's integration tests: start and kill the helper processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def start_proc(*args: str) -> subprocess.Popen[str]:
    """Start ``python -m tests.integration.backbone.procs ARGS`` from the repo root."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.backbone.procs", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    """Block until ``proc`` prints a line containing ``text``; fail with its output otherwise."""
    import select
    import time

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if text in line:
                return
    raise AssertionError(f"process never said {text!r}; output:\n{''.join(seen)[-4000:]}")
