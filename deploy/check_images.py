"""Runs a service Dockerfile's install and entrypoint steps as written, without a Docker engine.

``python deploy/check_images.py registry [events ...]`` reads ``services/<svc>/Dockerfile`` and
replays it in a temporary directory:

* build stage: ``ENV`` lines, ``COPY`` lines (from the repository, filtered like the build
  context) and ``RUN`` lines, in order, in a fresh virtual environment that stands in for the
  base image's interpreter (``pip install uv==...`` goes there); ``/app`` and ``/src`` are mapped
  into the temporary directory;
* runtime stage: the build sources are deleted (only the virtual environment is copied in the
  image), the runtime ``ENV`` lines are applied, the ``CMD`` is started on a free loopback port,
  the ``HEALTHCHECK`` command must pass, ``/readyz`` is reported, and SIGTERM must stop the
  process within the graceful timeout.

The entrypoint needs Kafka and a MongoDB-wire store (the app connects in its lifespan): it uses
``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URL`` from the environment with a throwaway database
and consumer group. Without them only the installed app module is imported. Exits non-zero on
any failure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOP_WITHIN_SECONDS = 30.0
SLOW_STOP_SECONDS = 10.0


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments) pairs with continuation lines joined."""
    joined: list[str] = []
    buf = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        joined.append(buf + line)
        buf = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in joined]


def stages(steps: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Return the steps of each named stage (``FROM image AS name``)."""
    out: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for op, arg in steps:
        if op == "FROM":
            current = arg.split()[-1]
            out[current] = []
        elif current:
            out[current].append((op, arg))
    return out


def env_pairs(arg: str, env: dict[str, str]) -> dict[str, str]:
    """Return the variables an ``ENV k=v ...`` line sets, with ``$VAR`` expanded from ``env``."""
    pairs: dict[str, str] = {}
    for item in shlex.split(arg):
        key, _, value = item.partition("=")
        pairs[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
    return pairs


def mapped(value: str, tmp: Path) -> str:
    """Return ``value`` with the image's /app and /src paths moved into ``tmp``."""
    return re.sub(r"(?<![\w.])/(app|src)(?=/|$|:|\s)", lambda m: str(tmp / m.group(1)), value)


def copy_into(args: str, workdir: Path) -> None:
    """Do a ``COPY src... dest`` from the repository into ``workdir`` (no __pycache__)."""
    *sources, dest = shlex.split(args)
    target = workdir / dest
    for src in sources:
        origin = ROOT / src
        into = target / origin.name if dest.endswith("/") or len(sources) > 1 else target
        if origin.is_dir():
            shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, into)


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(svc: str, steps: list[tuple[str, str]], tmp: Path) -> dict[str, str]:
    """Replay the build stage; return the environment it leaves."""
    tools = tmp / "base"  # stands in for the base image's interpreter and its pip
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
    env = dict(os.environ)
    for key in [k for k in env if k.startswith(("UV_", "VIRTUAL_ENV", "PYTHON"))]:
        del env[key]
    env["PATH"] = f"{tools / 'bin'}:{env['PATH']}"
    env["UV_PYTHON"] = str(tools / "bin" / "python")
    workdir = tmp / "src"
    workdir.mkdir()
    for op, arg in steps:
        if op == "ENV":
            env.update({k: mapped(v, tmp) for k, v in env_pairs(arg, env).items()})
        elif op == "COPY":
            copy_into(arg, workdir)
        elif op == "RUN":
            print(f"[{svc}] RUN {arg}", flush=True)
            subprocess.run(["/bin/bash", "-o", "pipefail", "-c", mapped(arg, tmp)], cwd=workdir, env=env, check=True)
    return env


def run_entrypoint(svc: str, steps: list[tuple[str, str]], tmp: Path) -> None:
    """Replay the runtime stage: start the CMD, pass the HEALTHCHECK, stop it with SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    cmd: list[str] = []
    health: list[str] = []
    for op, arg in steps:
        if op == "ENV":
            env.update({k: mapped(v, tmp) for k, v in env_pairs(arg, env).items()})
        elif op == "CMD":
            cmd = json.loads(arg)
        elif op == "HEALTHCHECK":
            health = json.loads(arg[arg.index("CMD") + 3 :])
        elif op == "USER" and arg.split(":")[0] in ("0", "root"):
            raise SystemExit(f"[{svc}] the image runs as root")
    if not cmd or not health:
        raise SystemExit(f"[{svc}] the runtime stage needs a CMD and a HEALTHCHECK in exec form")
    app_module = next(a for a in cmd if ":app" in a).split(":")[0]
    subprocess.run([str(tmp / "app/.venv/bin/python"), "-c", f"import {app_module}"], env=env, check=True)
    print(f"[{svc}] import {app_module}: ok (from the installed wheel, sources deleted)", flush=True)
    if not (os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("MONGODB_URL")):
        print(f"[{svc}] SKIP entrypoint run: set KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL to a running stack")
        return
    port = str(free_port())
    cmd = [port if a == "8000" else "127.0.0.1" if a == "0.0.0.0" else a for a in cmd]
    health = [a.replace(":8000/", f":{port}/") for a in health]
    prefix = svc.upper()
    run_id = uuid.uuid4().hex[:8]
    env.update(
        {
            "ENVIRONMENT": "test",
            f"{prefix}_MONGODB_DATABASE": f"imagecheck_{svc}_{run_id}",
            f"{prefix}_CONSUMER_GROUP": f"imagecheck-{svc}-{run_id}",
        }
    )
    print(f"[{svc}] CMD {' '.join(cmd)}", flush=True)
    log = (tmp / "service.log").open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp / "app", stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(health, env=env, capture_output=True, timeout=15).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"[{svc}] HEALTHCHECK never passed:\n{(tmp / 'service.log').read_text()[-3000:]}")
            time.sleep(0.5)
        print(f"[{svc}] HEALTHCHECK {' '.join(health[:2])} ...: ok", flush=True)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
                print(f"[{svc}] /readyz: {resp.status} {resp.read().decode()[:200]}", flush=True)
        except Exception as exc:  # reported, not required: readiness depends on the stack
            print(f"[{svc}] /readyz: {exc}", flush=True)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_WITHIN_SECONDS)
        took = time.monotonic() - started
        print(f"[{svc}] SIGTERM: exited {code} after {took:.1f}s", flush=True)
        if took > SLOW_STOP_SECONDS:  # within the grace period, but worth a look: show the shutdown
            shutdown = (tmp / "service.log").read_text().split("Shutting down", 1)[-1]
            print(f"[{svc}] WARNING: slow shutdown; its log:\n{shutdown[-3000:]}", flush=True)
        # uvicorn re-raises SIGTERM after a complete shutdown, so -15 (143 in a shell) is clean too.
        if code not in (0, -signal.SIGTERM) or "Application shutdown complete" not in (tmp / "service.log").read_text():
            raise SystemExit(f"[{svc}] unclean exit {code}:\n{(tmp / 'service.log').read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        _drop_database(env[f"{prefix}_MONGODB_DATABASE"], env)


def _drop_database(name: str, env: dict[str, str]) -> None:
    url = os.environ["MONGODB_URL"]
    client = f"pymongo.MongoClient({url!r}, serverSelectionTimeoutMS=5000, socketTimeoutMS=20000)"
    code = f"import pymongo; {client}.drop_database({name!r})"
    try:
        subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        print(f"# could not drop the throwaway database {name} (store busy); drop it by hand", flush=True)


def check(svc: str) -> None:
    """Replay one service's Dockerfile."""
    dockerfile = ROOT / "services" / svc / "Dockerfile"
    parts = stages(instructions(dockerfile))
    if set(parts) != {"build", "runtime"}:
        raise SystemExit(f"[{svc}] expected stages 'build' and 'runtime', found {sorted(parts)}")
    with tempfile.TemporaryDirectory(prefix=f"imagecheck-{svc}-") as name:
        tmp = Path(name)
        started = time.monotonic()
        build(svc, parts["build"], tmp)
        shutil.rmtree(tmp / "src")  # the runtime stage copies only /app/.venv
        shutil.rmtree(tmp / "base" / "lib")  # nor does it have the build stage's uv
        print(f"[{svc}] build stage replayed in {time.monotonic() - started:.0f}s", flush=True)
        run_entrypoint(svc, parts["runtime"], tmp)


def main(argv: list[str]) -> int:
    """Check the named services (default: all three)."""
    for svc in argv or ["registry", "events", "notifications"]:
        check(svc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
