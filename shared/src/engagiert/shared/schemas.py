"""Generates the JSON Schemas of every event type into ``shared/schemas/`` for non-Python systems.

``python -m engagiert.shared.schemas`` writes them; ``--check`` exits 1 when a file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engagiert.shared.contracts.base import event_types

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def render_all() -> dict[str, str]:
    """Return file name -> JSON text for every registered type's data schema."""
    out: dict[str, str] = {}
    for event_type, model in sorted(event_types().items()):
        schema: dict[str, Any] = model.model_json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://engagiert.de/schemas/{event_type}.json",
            "x-cloudevents-type": event_type,
            "x-kafka-topic": model.TOPIC,
            "x-kind": model.KIND,
            **schema,
        }
        out[f"{event_type}.json"] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the schemas, or with ``--check`` report stale or missing ones."""
    parser = argparse.ArgumentParser(prog="python -m engagiert.shared.schemas")
    parser.add_argument("--check", action="store_true", help="exit 1 when the files differ from the models")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR)
    args = parser.parse_args(argv)
    rendered = render_all()
    existing = {p.name for p in args.dir.glob("*.json")} if args.dir.exists() else set()
    stale = [n for n, text in rendered.items() if not (args.dir / n).exists() or (args.dir / n).read_text() != text]
    extra = sorted(existing - set(rendered))
    if args.check:
        for name in stale + extra:
            print(f"stale: {name}", file=sys.stderr)
        if stale or extra:
            print("run: uv run python -m engagiert.shared.schemas", file=sys.stderr)
        return 1 if stale or extra else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (args.dir / name).unlink()
    for name, text in rendered.items():
        (args.dir / name).write_text(text)
    print(f"wrote {len(rendered)} schemas to {args.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
