#!/usr/bin/env bash
# Runs `bnconform check` on real library layers (torchvision, timm, torch.nn.SyncBatchNorm) and
# writes the trimmed JSON reports to tests/library/results/, which tests/test_library_layers.py
# compares with the checker's current output. Judgements of every finding: tests/library/README.md.
#
# Needs, on this machine kind: Python 3.11 and the torch 2.14.1 / torchvision 0.29.1 wheels that lie
# on local disk (pip on Python 3.11 takes them from there; a CUDA build, ~5.5 GB in the venv, runs on
# the CPU). The project venv (.venv, torch 2.13.0 CPU) cannot take torchvision: PyPI's torchvision
# fails beside that torch ("operator torchvision::nms does not exist"), so a separate venv is made.
# timm comes from PyPI, pinned beside that torch; if pip cannot keep torch at 2.14.1, timm is skipped.
#
# Usage: scripts/check-library-layers.sh            (from anywhere; LIBVENV=/tmp/libvenv by default)
#        KEEP_VENV=1 scripts/check-library-layers.sh (reuse an existing $LIBVENV)
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
LIBVENV="${LIBVENV:-/tmp/libvenv}"
OUT="$REPO/tests/library/results"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ "${KEEP_VENV:-0}" != 1 ] || [ ! -x "$LIBVENV/bin/python" ]; then
    rm -rf "$LIBVENV"
    python3.11 -m venv "$LIBVENV" || exit 1
    "$LIBVENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 || exit 1
fi
PY="$LIBVENV/bin/python"
# bnconform from this working tree, as a wheel, without letting pip touch torch.
"$LIBVENV/bin/pip" install -q 'setuptools>=77' wheel || exit 1
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/wheel" "$REPO" || exit 1
"$LIBVENV/bin/pip" install -q --force-reinstall --no-deps "$WORK"/wheel/bnconform-*.whl || exit 1
"$LIBVENV/bin/pip" install -q tabulate hypothesis matplotlib numpy pytest pytest-benchmark || exit 1
# timm only if it installs beside torch 2.14.1 (the pins make pip refuse rather than replace torch).
"$LIBVENV/bin/pip" install -q timm torch==2.14.1 torchvision==0.29.1 || echo "timm skipped: it needs another torch"
"$PY" -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1'), torch.__version__" || exit 1

mkdir -p "$OUT"
# name | target | spec | extra options (--init / --world-size)
CASES="
tv-frozenbn2d-frozen|torchvision.ops:FrozenBatchNorm2d|frozen|
tv-frozenbn2d-pytorch|torchvision.ops:FrozenBatchNorm2d|pytorch|
timm-bnact2d-relu-pytorch|timm.layers:BatchNormAct2d|pytorch|
timm-bnact2d-noact-pytorch|timm.layers:BatchNormAct2d|pytorch|--init act_layer=None
timm-bnact2d-applyactfalse-pytorch|timm.layers:BatchNormAct2d|pytorch|--init apply_act=False
timm-frozenbnact2d-frozen|timm.layers:FrozenBatchNormAct2d|frozen|
timm-frozenbnact2d-noact-frozen|timm.layers:FrozenBatchNormAct2d|frozen|--init apply_act=False
timm-frozenbn2d-frozen|timm.layers.norm_act:FrozenBatchNorm2d|frozen|
torch-syncbn-pytorch|torch.nn:SyncBatchNorm|pytorch|
torch-syncbn-ws2|torch.nn:SyncBatchNorm|pytorch|--world-size 2
"
echo "$CASES" | while IFS='|' read -r name target spec extra; do
    [ -n "$name" ] || continue
    case "$target" in timm.*) "$PY" -c "import timm" 2>/dev/null || { echo "$name: timm missing, skipped"; continue; };; esac
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # $extra is a list of options
    (cd "$WORK" && "$LIBVENV/bin/bnconform" check "$target" --spec "$spec" $extra --format json,md \
        --output "$WORK/$name" --no-config --color never >"$WORK/$name.out" 2>"$WORK/$name.err")
    rc=$?
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    echo "$name: exit $rc, wall ${wall}s"
    "$PY" - "$WORK/$name" "$OUT/$name.json" "$name" "$target" "$spec" "$extra" "$rc" "$wall" <<'EOF'
import json, sys
from importlib import metadata
from pathlib import Path

src, dst, name, target, spec, extra, rc, wall = sys.argv[1:]
def version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
init = {}
words = extra.split()
for flag, value in zip(words, words[1:]):
    if flag == "--init":
        key, _, literal = value.partition("=")
        init[key] = literal  # the literal text, as the CLI takes it
case = {"name": name, "target": target, "spec": spec, "init": init, "options": extra, "exit_code": int(rc),
        "wall_s": round(float(wall), 1),
        "packages": {d: version(d) for d in ("torch", "torchvision", "timm", "bnconform")}}
report_path = Path(src) / "bnconform-report.json"
if not report_path.exists():  # a usage error (exit 2): the one line it printed is the result
    err = Path(src + ".err").read_text().strip().splitlines()
    result = {"case": case, "usage_error": err[-1] if err else ""}
else:
    r = json.loads(report_path.read_text())
    result = {
        "case": case,
        "schema": r["schema"],
        "environment": {k: r["environment"].get(k) for k in ("python", "torch")},
        "target": {k: r["target"].get(k) for k in ("qualname", "construction", "tensors")},
        "domain": r["domain"],
        "spec": r["spec"]["name"],
        "fingerprint": r["fingerprint"],
        "checks": {c["id"]: c["status"] + (f": {c['reason']}" if c.get("reason") else "") for c in r["checks"]},
        "findings": [{k: f.get(k) for k in ("code", "severity", "message", "expected", "observed", "caused_by",
                                            "consequences")} for f in r["findings"]],
        "summary": {k: r["summary"][k] for k in ("verdict", "exit_code", "counts", "duration_s")},
    }
Path(dst).write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
EOF
done
echo "results in $OUT; judge every finding in tests/library/README.md"
