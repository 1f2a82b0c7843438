"""Fuzzes the three running services' HTTP APIs with Schemathesis and prints the figures (``make fuzz``).

Each service is fuzzed from its own OpenAPI document for ``--seconds`` (a fixed ``--seed``
makes a run repeatable) with a local token for every municipality and the roles staff and
network-admin, after making sure the municipality the config pins (05774032) exists. The
checks: no server error, every status code documented, every content type documented (the
operations endpoints, which take no input, are left out: /readyz answers 503 when not ready). The
JSON reports go to ``fuzz-results/<service>/``; the exit code is 1 when a server error or an
undocumented status code was seen.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from engagiert.shared.auth import mint_token
from engagiert.shared.settings import LOCAL_AUTH_KEY

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "fuzz" / "schemathesis.toml"
AGS = "05774032"
SERVICES = {"registry": 8001, "events": 8002, "notifications": 8003}
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"


def base_url(service: str) -> str:
    """Return the base URL of ``service``: ``<SERVICE>_URL`` or the local stack's port."""
    port = os.environ.get(f"{service.upper()}_PORT", str(SERVICES[service]))
    return os.environ.get(f"{service.upper()}_URL", f"http://127.0.0.1:{port}").rstrip("/")


def ensure_municipality(token: str) -> None:
    """Create the pinned municipality in the registry unless it exists (the fuzzer's requests need it)."""
    r = httpx.post(
        f"{base_url('registry')}/v1/municipalities",
        json={"ags": AGS, "name": "Paderborn", "kind": "Stadt"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if r.status_code not in (200, 201, 409):
        sys.exit(f"fuzz: could not create municipality {AGS}: {r.status_code} {r.text[:200]}")


def fuzz(service: str, *, token: str, seed: int, seconds: int, out: Path) -> dict[str, int]:
    """Run Schemathesis against ``service``; return its figures."""
    report_dir = out / service
    report_dir.mkdir(parents=True, exist_ok=True)
    for old in report_dir.glob("json-*.json"):
        old.unlink()
    cmd = [
        str(ROOT / ".venv" / "bin" / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url(service)}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--seed",
        str(seed),
        "--max-time",
        str(seconds),
        "--workers",
        "1",
        # /healthz, /readyz, /asyncapi.json take no input; /readyz answers 503 by design when not ready.
        "--exclude-tag",
        "operations",
        "--report",
        "json",
        "--report-dir",
        str(report_dir),
    ]
    print(f"fuzz: {service} at {base_url(service)} for {seconds} s (seed {seed})", flush=True)
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL if not os.environ.get("FUZZ_VERBOSE") else None)
    reports = sorted(glob.glob(str(report_dir / "json-*.json")))
    if not reports:
        sys.exit(f"fuzz: Schemathesis wrote no report for {service} (is it running at {base_url(service)}?)")
    report = json.loads(Path(reports[-1]).read_text())
    figures = {"cases": report["test_cases"]["generated"], "server_errors": 0, "undocumented": 0, "other": 0}
    for failure in report.get("failures", []):
        kind = {"ServerError": "server_errors", "UndefinedStatusCode": "undocumented"}.get(failure.get("type"), "other")
        figures[kind] += int(failure.get("count", 1))
    figures["errors"] = len(report.get("errors", []))
    return figures


def main() -> None:
    """Fuzz every service and print a table of the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "120")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "20261130")))
    parser.add_argument("--out", type=Path, default=ROOT / "fuzz-results")
    parser.add_argument("services", nargs="*", default=list(SERVICES))
    args = parser.parse_args()
    token = mint_token(
        key=os.environ.get("AUTH_LOCAL_KEY", LOCAL_AUTH_KEY),
        subject="fuzzer",
        municipalities=["*"],
        roles=["staff", "network-admin"],
    )
    ensure_municipality(token)
    results = {s: fuzz(s, token=token, seed=args.seed, seconds=args.seconds, out=args.out) for s in args.services}
    print()
    print(f"{'service':<14}{'cases':>8}{'5xx':>6}{'undocumented':>14}{'other':>7}{'errors':>8}")
    for service, f in results.items():
        print(
            f"{service:<14}{f['cases']:>8}{f['server_errors']:>6}{f['undocumented']:>14}{f['other']:>7}{f['errors']:>8}"
        )
    print(f"reports: {args.out}/<service>/json-*.json (seed {args.seed}, {args.seconds} s per service)")
    bad = any(f["server_errors"] or f["undocumented"] for f in results.values())
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
