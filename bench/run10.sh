#!/usr/bin/env bash
# The issue #10 grid as committed: a documented subset in priority order (what one
# 2-core machine shared by seven people could run in about an hour). Resumable:
# re-running skips every (case, policy, seed) already in bench/results/efficiency10/runs.
# The full grid: bench/efficiency10.py --seeds 20 --noise 0,0.1,0.3 --batches main,alt
set -euo pipefail
cd "$(dirname "$0")/.."
PY=bench/.venv-compare/bin/python
run() { nice -n 19 "$PY" bench/efficiency10.py --seeds 20 --jobs 2 --candidates "$@"; }
run --cases breast_cancer --noise 0.3
run --cases trec --batches alt --noise 0
run --cases breast_cancer --noise 0
run --cases digits --batches alt --noise 0
run --cases digits --batches alt --noise 0.3
run --cases wine,iris --noise 0,0.3
run --cases breast_cancer,digits --noise 0.1
