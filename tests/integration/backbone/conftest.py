"""Helpers for the backbone's integration tests: start and kill the helper processes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


class Proc(subprocess.Popen[bytes]):
    """A helper process whose output goes to a file (a pipe nobody reads would block it)."""

    log_path: Path


def start_proc(*args: str) -> Proc:
    """Start ``python -m tests.integration.backbone.procs ARGS`` from the repo root."""
    log = Path(tempfile.mkstemp(prefix="engagiert-proc-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = Proc(
            [sys.executable, "-m", "tests.integration.backbone.procs", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log
    return proc


def wait_for_line(proc: Proc, text: str, timeout: float = 60) -> None:
    """Block until ``proc`` has printed a line containing ``text``; fail with its output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = proc.log_path.read_text(errors="replace")
        if any(text in line for line in output.splitlines()):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"process never said {text!r}; output:\n{proc.log_path.read_text(errors='replace')[-4000:]}")
