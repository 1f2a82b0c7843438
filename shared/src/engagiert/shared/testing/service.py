"""Runs a service for tests: in-process with its lifespan, or as a real uvicorn process to kill."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI

from engagiert.shared.testing.stack import REPO_ROOT


@contextlib.asynccontextmanager
async def app_client(app: FastAPI, *, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``'s lifespan (broker, store, consumers, relay) and give an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as client:
            yield client


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """A service run as ``uvicorn <module>:app`` in its own process, as ``make up`` runs it."""

    def __init__(
        self, module: str, *, env: dict[str, str], port: int | None = None, log_dir: Path | None = None
    ) -> None:
        self.module = module
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.log_path = (log_dir or Path("/tmp")) / f"{module.replace('.', '_')}_{self.port}.log"  # noqa: S108
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the service's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: float = 60.0) -> ServiceProcess:
        """Start the process and wait until ``/readyz`` answers 200."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"{self.module}:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--timeout-graceful-shutdown", "20"],
            env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        if wait_ready:
            self.wait_ready(wait_ready)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until ``/readyz`` answers 200; fail with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.module} not ready; log tail:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        """Return the end of the process's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL the process (a crash: nothing is flushed, nothing committed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the process and wait for its graceful shutdown; SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
