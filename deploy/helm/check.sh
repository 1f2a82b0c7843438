#!/usr/bin/env bash
# Checks the Helm chart offline, without a cluster:
#   1. helm lint --strict with the default values and with values-production.yaml;
#   2. helm template with both values files, for the oldest and the newest Kubernetes version
#      we support, and validation of every rendered manifest against that version's OpenAPI
#      schemas (PyPI kubernetes-validate, strict: unknown fields fail). The one CRD kind
#      (ServiceMonitor) has no schema there and gets a structural check instead;
#   3. negative controls, so that a green run means something: a misspelt values key, a grace
#      period shorter than the graceful timeout, SASL without a secret, ACLs without SASL and a broken manifest
#      must each FAIL.
# Installs helm (Go module proxy) into .stack/bin and kubernetes-validate into .venv if missing.
# Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHART="$ROOT/deploy/helm/engagiert"
HELM_VERSION=v3.22.0
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBE_VERSIONS=(1.27.0 1.37.0)   # the chart's kubeVersion floor and the newest schemas we have
BIN="$ROOT/.stack/bin"
HELM="$BIN/helm"
PY="$ROOT/.venv/bin/python"
KV="$ROOT/.venv/bin/kubernetes-validate"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------------
if [[ ! -x "$HELM" || "$(cat "$BIN/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ]]; then
  echo "== installing helm $HELM_VERSION into $BIN (go install)"
  mkdir -p "$BIN"
  GOBIN="$BIN" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" > "$BIN/.helm-version"
fi
[[ -x "$PY" ]] || fail "no $PY: run 'uv sync' first"
if [[ "$("$PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]]; then
  echo "== installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into .venv"
  uv pip install --quiet --python "$PY" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
echo "== helm $("$HELM" version --template '{{.Version}}') ($HELM_VERSION), kubernetes-validate $KUBERNETES_VALIDATE_VERSION"

# --- 1. lint ------------------------------------------------------------------------------------
for values in "" "$CHART/values-production.yaml"; do
  label="${values:+$(basename "$values")}"; label="${label:-default values}"
  "$HELM" lint --strict --kube-version "${KUBE_VERSIONS[-1]}" "$CHART" ${values:+-f "$values"} >"$WORK/lint.log" 2>&1 \
    || { cat "$WORK/lint.log" >&2; fail "helm lint --strict ($label)"; }
  echo "helm lint --strict ($label): ok"
done

# --- 1b. every chart-defined key in values.yaml has a comment right above it ----------------------
"$PY" - "$CHART/values.yaml" "$CHART/values.schema.json" <<'EOF'
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
schema = json.load(open(sys.argv[2]))
def resolve(n):
    return schema["definitions"][n["$ref"].split("/")[-1]] if "$ref" in n else n
def node(path):
    n = schema
    for key in path:
        n = (resolve(n).get("properties") or {}).get(key)
        if n is None:
            return None
    return resolve(n)
stack, missing, checked = [], [], 0
for i, line in enumerate(lines):
    m = re.match(r"^(\s*)([A-Za-z][\w.-]*):( |$)", line)
    if not m:
        continue
    indent = len(m.group(1))
    while stack and stack[-1][0] >= indent:
        stack.pop()
    path = [k for _, k in stack] + [m.group(2)]
    stack.append((indent, m.group(2)))
    parent = node(path[:-1])
    if parent is None or m.group(2) not in (parent.get("properties") or {}):
        continue  # inside a free-form Kubernetes object
    checked += 1
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or not lines[j].strip().startswith("#"):
        missing.append(f"values.yaml:{i + 1}: {'.'.join(path)}")
if missing:
    sys.exit("keys without a comment:\n" + "\n".join(missing))
print(f"values.yaml: all {checked} chart-defined keys are commented")
EOF

# --- 2. render and validate ---------------------------------------------------------------------
validate() {  # validate FILE KUBE_VERSION: every document schema-valid (strict), CRDs checked by hand
  local file="$1" kube="$2"
  "$KV" --strict --kubernetes-version "$kube" --quiet "$file" >"$WORK/kv.log" 2>&1 || { cat "$WORK/kv.log" >&2; return 1; }
  "$PY" - "$file" "$WORK/kv.log" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
log = open(sys.argv[2]).read()
crd_kinds = {("monitoring.coreos.com/v1", "ServiceMonitor")}
bad = [l for l in log.splitlines() if l.startswith("WARN") and "ServiceMonitor" not in l]
if bad:
    sys.exit("unexpected warnings:\n" + "\n".join(bad))
for d in docs:
    if (d.get("apiVersion"), d.get("kind")) in crd_kinds:
        spec = d.get("spec") or {}
        assert d["metadata"]["name"] and spec["selector"]["matchLabels"], "ServiceMonitor without selector"
        assert all(e.get("port") and e.get("path") == "/metrics" for e in spec["endpoints"]), "ServiceMonitor endpoints"
kinds = sorted(f"{d['kind']}" for d in docs)
print(f"{len(docs)} manifests ({', '.join(f'{k} x{kinds.count(k)}' for k in sorted(set(kinds)))})")
EOF
}

for kube in "${KUBE_VERSIONS[@]}"; do
  for values in "" "$CHART/values-production.yaml"; do
    label="${values:+$(basename "$values")}"; label="${label:-default values}"
    out="$WORK/rendered.yaml"
    "$HELM" template engagiert "$CHART" --namespace engagiert --kube-version "$kube" ${values:+-f "$values"} >"$out" 2>"$WORK/tpl.log" \
      || { cat "$WORK/tpl.log" >&2; fail "helm template ($label, Kubernetes $kube)"; }
    summary="$(validate "$out" "$kube")" || fail "schema validation ($label, Kubernetes $kube)"
    echo "helm template + kubernetes-validate --strict ($label, Kubernetes $kube): $summary"
  done
done

# --- 3. negative controls -----------------------------------------------------------------------
must_fail_template() {  # must_fail_template DESCRIPTION EXPECTED-TEXT HELM-ARGS...
  local what="$1" expect="$2"; shift 2
  if "$HELM" template engagiert "$CHART" --kube-version "${KUBE_VERSIONS[-1]}" "$@" >/dev/null 2>"$WORK/neg.log"; then
    fail "negative control passed but must fail: $what"
  fi
  grep -q -- "$expect" "$WORK/neg.log" || { cat "$WORK/neg.log" >&2; fail "negative control failed for another reason: $what"; }
  echo "rejected as it must be: $what"
}
must_fail_template "misspelt key registry.replica" "additional properties 'replica' not allowed" --set registry.replica=3
must_fail_template "misspelt top-level key kafak" "additional properties 'kafak' not allowed" --set kafak.bootstrapServers=x:1
must_fail_template "grace period not above the graceful timeout" "must exceed" --set events.terminationGracePeriodSeconds=20
must_fail_template "SASL without a credentials secret" "kafka.sasl.existingSecret is required" --set kafka.securityProtocol=SASL_SSL
must_fail_template "unknown security protocol" "securityProtocol" --set kafka.securityProtocol=TLS
must_fail_template "ACLs without SASL users" "kafka.acls.create needs" --set kafka.acls.create=true
must_fail_template "console without its OIDC client Secret" "console.oidc.existingSecret is required" --set console.oidc.existingSecret=

"$HELM" template engagiert "$CHART" --kube-version "${KUBE_VERSIONS[-1]}" >"$WORK/broken.yaml"
sed -i '0,/^  replicas: 2$/s//  replicas: two\n  replica: 2/' "$WORK/broken.yaml"
if validate "$WORK/broken.yaml" "${KUBE_VERSIONS[-1]}" >/dev/null 2>&1; then
  fail "negative control passed but must fail: a Deployment with 'replicas: two' and an unknown field"
fi
echo "rejected as it must be: a rendered Deployment with a wrong type and an unknown field"

echo "== helm check: OK"
