#!/usr/bin/env bash
# The CUDA paths of bnconform on a GPU machine: the cuda-marked tests and a CUDA check of
# torch.nn.BatchNorm2d. Installs nothing beyond `pip install -e .[test]`, and only when
# bnconform is not importable yet. Usage: scripts/gpu_check.sh  (from anywhere)
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && PY=.venv/bin/python

"$PY" -c "import bnconform, pytest" 2>/dev/null || "$PY" -m pip install -q -e ".[test]"

echo "== versions"
"$PY" - <<'PYEOF'
import platform, torch, bnconform
print("python", platform.python_version(), "| torch", torch.__version__, "| bnconform", bnconform.__version__)
print("cuda available:", torch.cuda.is_available(), "| cuda", torch.version.cuda,
      "| cudnn", torch.backends.cudnn.version() if torch.cuda.is_available() else None)
if torch.cuda.is_available():
    print("gpu:", torch.cuda.get_device_name(0))
PYEOF

status=0
echo "== pytest -m cuda"
"$PY" -m pytest -m cuda -q -p no:cacheprovider -rs || status=1
echo "== bnconform check torch.nn:BatchNorm2d --device cuda"
out=$(mktemp -d)
"$PY" -m bnconform.cli check torch.nn:BatchNorm2d --device cuda --format json --output "$out" || status=1
[ -f "$out/bnconform-report.json" ] && "$PY" - "$out/bnconform-report.json" <<'PYEOF' || status=1
import json, sys
result = json.load(open(sys.argv[1]))
for check in result["checks"]:
    if check["id"] in ("device-parity", "device-transfer", "dtype-support"):
        print(f'{check["id"]:16} {check["status"]:8} {check["reason"]}')
        for name, value in check["measurements"].items():
            print(f"    {name}: {value}")
print("verdict:", result["summary"]["verdict"], "| devices:", result["settings"]["devices"])
PYEOF
exit $status
