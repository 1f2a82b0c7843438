"""Runs every benchmark on the real stack in one go; prints a table and writes bench-results/bench.json.

``make bench`` (or ``python -m tests.bench.run --size 10000``). Figures are measured in the same
run, so ratios compare like with like on this machine at this moment. Sizes are configurable;
the default run finishes within a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import platform
import resource
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from engagiert.shared.testing.stack import REPO_ROOT, resolve_stack
from tests.bench import raw

SERVICES = ("registry", "events", "notifications")


async def _run_async(stack: Any, size: int, raw_size: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results.update(await raw.aiokafka_produce_consume(stack, raw_size))
    results.update(await raw.store_bulk_insert(stack, size))
    results.update(await raw.smtp_raw(stack, min(size, 2000)))
    for service in SERVICES:
        module = _bench_module(service)
        if module is None:
            results[service] = "no benchmark yet"
            continue
        started = time.perf_counter()
        figures = await module.run(stack, size=size)
        results[service] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    return results


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
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results" / "bench.json")
    args = parser.parse_args()
    with ExitStack() as exits:
        stack = resolve_stack(exits)
        results: dict[str, Any] = {}
        results.update(raw.kafka_perf_tool(stack, args.raw_size))
        results.update(asyncio.run(_run_async(stack, args.size, args.raw_size)))
    results["bench_process_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "sizes": {"size": args.size, "raw_size": args.raw_size},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{'figure':<58} {'value':>14}")
    for key, value in _flatten(results):
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:<58} {shown:>14}")
    print(f"\nwritten to {args.out}")


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
