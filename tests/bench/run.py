"""Runs every benchmark on the real stack in one go; prints a table and writes bench-results/bench.json.

``make bench`` (or ``python -m tests.bench.run --help`` for the sizes). Figures are measured in
the same run, so ratios compare like with like on this machine at this moment. In order: the raw
ceilings, each service's own benchmark, the write-to-read-model latency under a steady load, the
invitations-to-e-mails pipeline, which gets what is left of ``--budget`` (default 570 s; an
unfinished pipeline is reported as partial), and last the network's figures over generated data
(``--figures-municipalities`` x ``--figures-members``, see tests/bench/figures.py), outside the
budget: about 80 s on a quiet machine (the figures in docs/network-figures.md).

The terminal shows progress and the table; everything the services and libraries log goes to
``bench-results/logs/`` (one file for this process, one per service process). ``bench.json``
holds the figures, a flat ``ratios`` map (a pipeline's figure over the ceiling it is measured
against, measured in the same run) and ``goals`` (each target of issue 16 with the figure and
whether it was met). ``--history N`` gives members N earlier entries before the service
benchmarks measure, to show that a report's cost does not grow with a member's history.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import platform
import resource
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from engagiert.shared.testing.kafka import caught_up_groups, skip_since
from engagiert.shared.testing.stack import REPO_ROOT, resolve_stack
from tests.bench import figures as network_figures
from tests.bench import pipeline, raw, relay

SERVICES = ("registry", "events", "notifications")
STOP_MARGIN_S = 40.0
"""Seconds kept back from ``--budget`` for stopping the services and dropping the scratch databases."""


class Progress:
    """Writes progress lines to the terminal (the process's own output goes to the log file)."""

    def __init__(self, terminal: TextIO, started: float) -> None:
        self.terminal = terminal
        self._started = started

    def __call__(self, message: str) -> None:
        """Print ``message`` with the seconds since the run began."""
        print(f"[{time.perf_counter() - self._started:6.0f} s] {message}", file=self.terminal, flush=True)


async def _run_async(stack: Any, args: argparse.Namespace, wall_started: float, say: Progress) -> dict[str, Any]:
    size, raw_size = args.size, args.raw_size
    results: dict[str, Any] = {}
    say(f"raw ceilings: aiokafka produce/consume ({raw_size:,} records), store bulk insert, aiosmtplib")
    results.update(await raw.aiokafka_produce_consume(stack, raw_size))
    results.update(await raw.store_bulk_insert(stack, size))
    results.update(await raw.smtp_raw(stack, min(size, 2000)))
    if size > 0:
        say(f"outbox relay: {size:,} documents with {relay.PER_DOC} pending records each")
        results["relay"] = await relay.outbox_relay(stack, size)
    for service in SERVICES if size > 0 else ():
        module = _bench_module(service)
        if module is None:
            results[service] = "no benchmark yet"
            continue
        say(f"{service}: its own benchmark (size {size:,}{f', history {args.history}' if args.history else ''})")
        started = time.perf_counter()
        options: dict[str, Any] = {"size": size}
        if args.history and "history" in inspect.signature(module.run).parameters:
            options["history"] = args.history
        figures = await module.run(stack, **options)
        results[service] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    if args.latency_seconds > 0:
        say(f"latency: member POSTs at {args.latency_rate}/s for {args.latency_seconds:.0f} s (registry, events)")
        started = time.perf_counter()
        try:
            figures = await pipeline.latency(
                stack, rate=args.latency_rate, seconds=args.latency_seconds, log_dir=args.log_dir
            )
        except Exception as exc:  # report what failed; the other figures still count
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        results["latency"] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    if args.invitations > 0:
        started = time.perf_counter()
        deadline = args.budget - (started - wall_started) - STOP_MARGIN_S
        say(f"invitations to e-mails: {args.invitations:,} (events, notifications; {max(deadline, 30.0):.0f} s left)")
        try:
            figures = await pipeline.invitations_to_mails(
                stack, size=args.invitations, deadline=max(deadline, 30.0), log_dir=args.log_dir
            )
        except Exception as exc:
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        results["invitations_to_mails"] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    if args.figures_municipalities > 0:
        say(
            f"network figures: {args.figures_municipalities:,} municipalities x {args.figures_members:,} members "
            "(registry, events)"
        )
        started = time.perf_counter()
        try:
            figures = await network_figures.network_figures(
                stack, municipalities=args.figures_municipalities, members=args.figures_members
            )
        except Exception as exc:  # report what failed; the other figures still count
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        results["network_figures"] = {**figures, "wall_s": round(time.perf_counter() - started, 2)}
    results["peak_rss_mib"] = _peaks(results)
    return results


def _get(results: dict[str, Any], *path: str) -> float | None:
    """Return the number at ``path`` in ``results``, or None when that part did not run or failed."""
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _over(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Return each pipeline's figure over the ceiling it is measured against (same run), keyed by both."""
    produce = _get(results, "aiokafka_produce_per_s")
    smtp = _get(results, "smtp_raw_per_s")
    issue = _get(results, "events", "issue_seconds")
    publish = _get(results, "events", "issue_and_publish_seconds")
    events_records = _get(results, "events", "records_published")
    events_publish_rate = (
        events_records / (publish - issue)
        if events_records and publish and issue is not None and publish > issue
        else None
    )
    invitations = _get(results, "invitations_to_mails", "invitations")
    all_mails = _get(results, "invitations_to_mails", "issue_to_all_mails_s")
    plain_mail_time = invitations / smtp if invitations and smtp else None
    found: dict[str, float | None] = {
        "relay_records_per_s_over_aiokafka_produce_per_s": _over(_get(results, "relay", "records_per_s"), produce),
        "relay_records_per_s_over_store_read_and_clear_per_s": _over(
            _get(results, "relay", "records_per_s"), _get(results, "relay", "store_read_and_clear_records_per_s")
        ),
        "store_read_and_clear_per_s_over_aiokafka_produce_per_s": _over(
            _get(results, "relay", "store_read_and_clear_records_per_s"), produce
        ),
        "events_publish_records_per_s_over_aiokafka_produce_per_s": _over(events_publish_rate, produce),
        "registry_inbound_per_s_over_plain_consume_bulk_insert_per_s": _get(results, "registry", "ratio"),
        "registry_inbound_with_history_per_s_over_plain_consume_bulk_insert_per_s": _get(
            results, "registry", "history_ratio"
        ),
        "events_read_model_with_history_s_over_events_read_model_s": _over(
            _get(results, "events", "read_model_with_history_s"), _get(results, "events", "read_model_s")
        ),
        "notifications_emails_per_s_over_aiosmtplib_per_s": _get(results, "notifications", "ratio_service_to_plain"),
        "invitations_to_all_mails_s_over_aiosmtplib_s_for_as_many": _over(all_mails, plain_mail_time),
    }
    return {key: value for key, value in found.items() if value is not None}


def goals(results: dict[str, Any], found: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Return issue 16's goals that this run measured: the figure, the target and whether it was met."""
    p99 = _get(results, "latency", "write_to_read_model_p99_ms")
    checks: dict[str, tuple[float | None, str, float]] = {
        "relay_at_least_0.25_of_aiokafka_produce": (
            found.get("relay_records_per_s_over_aiokafka_produce_per_s"),
            ">=",
            0.25,
        ),
        "registry_inbound_at_least_0.3_of_plain_consume_bulk_insert": (
            found.get("registry_inbound_per_s_over_plain_consume_bulk_insert_per_s"),
            ">=",
            0.3,
        ),
        "registry_inbound_with_history_at_least_0.3": (
            found.get("registry_inbound_with_history_per_s_over_plain_consume_bulk_insert_per_s"),
            ">=",
            0.3,
        ),
        "events_read_model_with_history_within_1.5x": (
            found.get("events_read_model_with_history_s_over_events_read_model_s"),
            "<=",
            1.5,
        ),
        "invitations_to_mails_within_1.3x_of_aiosmtplib": (
            found.get("invitations_to_all_mails_s_over_aiosmtplib_s_for_as_many"),
            "<=",
            1.3,
        ),
        "write_to_read_model_p99_under_100_ms": (p99, "<", 100.0),
    }
    for service, mib in (results.get("peak_rss_mib") or {}).items():
        checks[f"{service}_peak_under_150_mib"] = (mib, "<", 150.0)
    met = {">=": lambda v, t: v >= t, "<=": lambda v, t: v <= t, "<": lambda v, t: v < t}
    return {
        name: {"value": value, "target": f"{op} {target}", "met": met[op](value, target)}
        for name, (value, op, target) in checks.items()
        if value is not None
    }


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
    parser.add_argument(
        "--history", type=int, default=0, help="earlier entries each member gets before the service benchmarks "
        "measure (the registry's inbound reports and the events read model are measured without and with them)"
    )  # fmt: skip
    parser.add_argument(
        "--figures-municipalities", type=int, default=100, help="municipalities of generated data for the network's "
        "figures (0: skip)"
    )  # fmt: skip
    parser.add_argument("--figures-members", type=int, default=1_000, help="members per municipality for the figures")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results" / "bench.json")
    args = parser.parse_args()
    args.log_dir = args.out.parent / "logs"
    args.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = args.log_dir / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    terminal = _logs_to(log_path)
    wall_started = time.perf_counter()
    say = Progress(terminal, wall_started)
    say(f"logs: {log_path} (the services' own: {args.log_dir}/engagiert_*.log)")
    load_at_start = round(os.getloadavg()[0], 2)
    with ExitStack() as exits:
        stack = resolve_stack(exits)
        # The bench writes to the shared topics (the services' own): the local stack's consumer
        # groups skip those records afterwards, or its services would work through them (and
        # send every e-mail again into Mailpit) when they next run.
        marks = asyncio.run(caught_up_groups(stack.kafka_bootstrap_servers))
        results: dict[str, Any] = {}
        try:
            say(f"raw ceiling: Kafka's producer perf tool ({args.raw_size:,} records)")
            results.update(raw.kafka_perf_tool(stack, args.raw_size))
            results.update(asyncio.run(_run_async(stack, args, wall_started, say)))
        finally:
            skipped, left = asyncio.run(skip_since(stack.kafka_bootstrap_servers, marks))
            say(
                f"the stack's consumer groups skip this run's {skipped:,} records"
                + (f" (not {', '.join(left)}: they read on during the run or were behind)" if left else "")
            )
    results["bench_process_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    load_at_end = round(os.getloadavg()[0], 2)
    found = ratios(results)
    report: dict[str, Any] = {
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
            "history": args.history, "figures_municipalities": args.figures_municipalities,
            "figures_members": args.figures_members,
        },
        "results": results,
        "ratios": found,
        "goals": goals(results, found),
    }  # fmt: skip
    report["total_wall_s"] = results["total_wall_s"] = round(time.perf_counter() - wall_started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    _print_table(terminal, report, args.out)


def _logs_to(path: Path) -> TextIO:
    """Send this process's stdout and stderr (and its children's) to ``path``; return a stream to the terminal."""
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    sys.stderr.flush()
    log = path.open("ab")
    os.dup2(log.fileno(), sys.stdout.fileno())
    os.dup2(log.fileno(), sys.stderr.fileno())
    return terminal


def _print_table(out: TextIO, report: dict[str, Any], path: Path) -> None:
    """Print every figure, the ratios and the goals."""
    print(f"\n{'figure':<66} {'value':>14}", file=out)
    for key, value in _flatten(report["results"]):
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:<66} {shown:>14}", file=out)
    print(f"\n{'ratio (same run)':<66} {'value':>14}", file=out)
    for key, value in report["ratios"].items():
        print(f"{key:<66} {value:>14.3f}", file=out)
    print(f"\n{'goal':<66} {'value':>14}  target   met", file=out)
    for key, goal in report["goals"].items():
        print(f"{key:<66} {goal['value']:>14,.3f}  {goal['target']:<8} {'yes' if goal['met'] else 'NO'}", file=out)
    machine = report["machine"]
    print(
        f"\nload average (1 min): {machine['load_average_1m_at_start']} at the start, "
        f"{machine['load_average_1m_at_end']} at the end ({machine['cpus']} cpus)",
        file=out,
    )
    print(f"total wall time {report['total_wall_s']:.0f} s; written to {path}", file=out)


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
