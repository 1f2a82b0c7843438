"""Runs every benchmark on the real stack in one go; prints a table and writes bench-results/bench.json.

``make bench`` (or ``python -m tests.bench.run --help`` for the sizes). Figures are measured in
the same run, so ratios compare like with like on this machine at this moment. In order: the raw
ceilings, each service's own benchmark, the write-to-read-model latency under a steady load, and
last the invitations-to-e-mails pipeline, which gets what is left of ``--budget`` (default 570 s:
the whole default run stays within 10 minutes; an unfinished pipeline is reported as partial).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import os
import platform
import resource
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from engagiert.shared.testing.stack import REPO_ROOT, resolve_stack
from tests.bench import pipeline, raw

SERVICES = ("registry", "events", "notifications")
STOP_MARGIN_S = 40.0
"""Seconds kept back from ``--budget`` for stopping the services and dropping the scratch databases."""


async def _run_async(stack: Any, args: argparse.Namespace, wall_started: float) -> dict[str, Any]:
    size, raw_size = args.size, args.raw_size
    results: dict[str, Any] = {}
    results.update(await raw.aiokafka_produce_consume(stack, raw_size))
    results.update(await raw.store_bulk_insert(stack, size))
    results.update(await raw.smtp_raw(stack, min(size, 2000)))
    for service in SERVICES if size > 0 else ():
        module = _bench_module(service)
        if module is None:
            results[service] = "no benchmark yet"
            continue
        started = time.perf_counter()
        figures = await module.run(stack, size=size)
        results[service] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    if args.latency_seconds > 0:
        started = time.perf_counter()
        try:
            figures = await pipeline.latency(stack, rate=args.latency_rate, seconds=args.latency_seconds)
        except Exception as exc:  # report what failed; the other figures still count
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        results["latency"] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    if args.invitations > 0:
        started = time.perf_counter()
        deadline = args.budget - (started - wall_started) - STOP_MARGIN_S
        try:
            figures = await pipeline.invitations_to_mails(stack, size=args.invitations, deadline=max(deadline, 30.0))
        except Exception as exc:
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        results["invitations_to_mails"] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    results["peak_rss_mib"] = _peaks(results)
    return results


def _peaks(results: dict[str, Any]) -> dict[str, float]:
    """Return each service process's highest peak memory over the phases that ran it."""
    peaks: dict[str, float] = {}
    for phase in ("latency", "invitations_to_mails"):
        for service, mib in (results.get(phase, {}).get("peak_rss_mib") or {}).items():
            if mib is not None:
                peaks[service] = max(peaks.get(service, 0.0), mib)
    return peaks


def _bench_module(service: str) -> Any:
    """Return the service's benchmark: ``engagiert.<service>.bench`` or ``services/<service>/bench.py``."""
    try:
        return importlib.import_module(f"engagiert.{service}.bench")
    except ImportError:
        pass
    path = REPO_ROOT / "services" / service / "bench.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"bench_{service}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """Run the benchmarks and report."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run")
    parser.add_argument(
        "--size", type=int, default=2_000, help="events/members/requests per service benchmark (10,000 takes long)"
    )
    parser.add_argument("--raw-size", type=int, default=50_000, help="records for the raw broker figures")
    parser.add_argument(
        "--latency-rate", type=float, default=5.0, help="member POSTs per second for the latency (open loop; keep it "
        "below what the registry sustains, or the figure measures a queue)"
    )  # fmt: skip
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="how long the steady load runs (0: skip)")
    parser.add_argument(
        "--invitations", type=int, default=2_000, help="invitations issued in one call (0: skip); the issue's figure "
        "is --invitations 10000 --budget 1800"
    )  # fmt: skip
    parser.add_argument(
        "--budget", type=float, default=570.0, help="seconds for the whole run; the invitations pipeline stops waiting "
        "for e-mails when it runs out (reported as partial)"
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results" / "bench.json")
    args = parser.parse_args()
    wall_started = time.perf_counter()
    load_at_start = round(os.getloadavg()[0], 2)
    with ExitStack() as exits:
        stack = resolve_stack(exits)
        results: dict[str, Any] = {}
        results.update(raw.kafka_perf_tool(stack, args.raw_size))
        results.update(asyncio.run(_run_async(stack, args, wall_started)))
    results["bench_process_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    load_at_end = round(os.getloadavg()[0], 2)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": load_at_end,
        },
        "sizes": {
            "size": args.size, "raw_size": args.raw_size, "latency_rate": args.latency_rate,
            "latency_seconds": args.latency_seconds, "invitations": args.invitations, "budget": args.budget,
        },
        "results": results,
    }  # fmt: skip
    report["total_wall_s"] = results["total_wall_s"] = round(time.perf_counter() - wall_started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{'figure':<58} {'value':>14}")
    for key, value in _flatten(results):
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:<58} {shown:>14}")
    print(f"load average (1 min): {load_at_start} at the start, {load_at_end} at the end ({os.cpu_count()} cpus)")
    print(f"\ntotal wall time {report['total_wall_s']:.0f} s; written to {args.out}")


def _flatten(results: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in results.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((prefix + key, value))
    return rows


if __name__ == "__main__":
    main()
