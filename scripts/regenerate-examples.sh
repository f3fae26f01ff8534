#!/usr/bin/env bash
# Regenerates the committed example reports under reports/examples/ (JSON, Markdown, HTML, JUnit).
# Usage: scripts/regenerate-examples.sh   (from the repository root, with bnconform installed)
set -u
cd "$(dirname "$0")/.."
bnconform check bnconform.examples.tutorial:BatchNorm --output reports/examples/tutorial
[ $? -le 1 ] || exit 1   # 1 = findings (expected for the tutorial), 2 = usage error
bnconform check torch.nn:BatchNorm2d --output reports/examples/torch-batchnorm2d || exit 1
