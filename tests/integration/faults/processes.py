"""Finds the process behind a local port and restarts it as it was started (for fault tests)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from engagiert.shared.testing.stack import REPO_ROOT


@dataclass
class LocalServer:
    """A server process of the stack, identified by the port it listens on."""

    port: int
    pid: int
    cmdline: list[str]
    cwd: str

    @classmethod
    def on_port(cls, port: int) -> LocalServer | None:
        """Return the process listening on ``port`` of this machine, or None."""
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"pid=(\d+)", out)
        if not match:
            return None
        pid = int(match.group(1))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        return cls(port=port, pid=pid, cmdline=[c.decode() for c in cmdline], cwd=os.readlink(f"/proc/{pid}/cwd"))

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the server and wait until it is gone."""
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not Path(f"/proc/{self.pid}").exists() or _is_zombie(self.pid):
                return
            time.sleep(0.2)
        os.kill(self.pid, signal.SIGKILL)

    def start(self, log: Path) -> None:
        """Start the server again with the same command line and folder; keep the stack's pid file true."""
        old = self.pid
        with log.open("ab") as out:
            proc = subprocess.Popen(
                self.cmdline, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = proc.pid
        run_dir = Path(os.environ.get("STACK_DIR") or REPO_ROOT / ".stack") / "run"  # as deploy/local/stack.sh
        for pid_file in run_dir.glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                if int(pid_file.read_text().strip()) == old:
                    pid_file.write_text(f"{self.pid}\n")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def port_of(url: str) -> int:
    """Return the port of ``host:port`` or ``scheme://host:port/...``."""
    match = re.search(r":(\d+)(?:/|$|,)", url.split(",")[0] + "/")
    if not match:
        raise ValueError(f"no port in {url!r}")
    return int(match.group(1))
