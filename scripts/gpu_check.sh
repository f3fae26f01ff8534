#!/usr/bin/env bash
# The CUDA paths of bnconform on a GPU machine: the cuda-marked tests and a CUDA check of
# torch.nn.BatchNorm2d, and (with 2+ GPUs) torch.nn.SyncBatchNorm over nccl. Installs nothing beyond `pip install -e .[test]`, and only when
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

echo "== bnconform check torch.nn:SyncBatchNorm --device cuda --world-size 2 (nccl, one GPU per rank)"
ngpu=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
if [ "${ngpu:-0}" -ge 2 ]; then
    sync_out=$(mktemp -d)
    timeout 900 "$PY" -m bnconform check torch.nn:SyncBatchNorm --device cuda --world-size 2 \
        --format json,md --output "$sync_out" || status=1
    [ -f "$sync_out/bnconform-report.json" ] && "$PY" - "$sync_out/bnconform-report.json" <<'PYEOF' || status=1
import json, sys
result = json.load(open(sys.argv[1]))
table = result["distributed"]
print("backend:", table["backend"], "| device:", table["device"], "| ranks:", table["world_size"])
for check in result["checks"]:
    if check["id"].startswith("sync-"):
        print(f'{check["id"]:28} {check["status"]:8} {check["reason"]}')
for row in table["ranks"]:
    print(f'rank {row["rank"]}: {row["verdict"]}, output error {row["output_error"]}, '
          f'input grad error {row["input_grad_error"]}')
assert table["backend"] == "nccl", "expected the nccl backend"
sys.exit(0 if all(c["status"] == "passed" for c in result["checks"] if c["id"].startswith("sync-")) else 1)
PYEOF
else
    echo "skipped: nccl needs one GPU per rank (found ${ngpu:-0} GPU(s), need 2)"
fi
exit $status
