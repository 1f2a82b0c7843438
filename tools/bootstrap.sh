#!/usr/bin/env bash
# Installs what the Python side needs on a fresh machine: uv (pinned) and the workspace's
# locked dependencies into .venv. Idempotent and quick when done already.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
if ! command -v uv >/dev/null 2>&1 || [[ "$(uv --version 2>/dev/null | awk '{print $2}')" != "$UV_VERSION" ]]; then
  echo "bootstrap: installing uv $UV_VERSION with pip" >&2
  python3.11 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# The root pyproject.toml pins every package (constraint-dependencies); uv.lock is local.
uv sync --quiet
