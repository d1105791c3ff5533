#!/usr/bin/env bash
# The issue #10 grid as committed, in priority order: what one 2-core machine could
# run in a session (cheap datasets first, so that more of them finish). Resumable:
# re-running skips every (case, policy, seed) already in bench/results/efficiency10/runs.
# The full grid: bench/efficiency10.py --seeds 20 --noise 0,0.1,0.3 --batches main,alt
set -euo pipefail
cd "$(dirname "$0")/.."
PY=bench/.venv-compare/bin/python
run() { nice -n 19 "$PY" bench/efficiency10.py --seeds 20 --jobs 2 "$@"; }
# Library policies, scikit-activeml's four, and the default it replaced (runs made
# before the switch: bench/migrate10.py renamed cand_blend -> default).
POL=default,random,margin,entropy,confidence_buckets,vote_entropy,representative
POL=$POL,skal_coreset,skal_typiclust,skal_clue,skal_badge,default_issue10
# Session 2: the first four cases, with the candidate defaults.
run --candidates --cases breast_cancer --noise 0.3
run --candidates --cases trec --batches alt --noise 0
run --candidates --cases breast_cancer --noise 0
run --candidates --cases digits --batches alt --noise 0
# Session 3: every dataset, clean oracle, the larger batch (fewer rounds), by cost.
CHEAP=iris,wine,breast_cancer,sms_spam,magic_gamma,adult,subjectivity,rotten_tomatoes,sst2
run --policies "$POL" --cases "$CHEAP" --batches alt --noise 0
run --policies "$POL" --cases hs_brexit,letter,md_agreement,ag_news,mnist --batches alt --noise 0
# Noisy oracles (30 %, then 10 %) on the cheap sets, then the most expensive set.
run --policies "$POL" --cases iris,wine,sms_spam,magic_gamma,adult,digits --batches alt --noise 0.3
run --policies "$POL" --cases iris,wine,sms_spam,magic_gamma,adult,digits --batches alt --noise 0.1
run --policies "$POL" --cases banking77 --batches alt --noise 0
# Session 4: the smaller (main) batch size, twice the rounds, on the cheap sets.
run --policies "$POL" --cases iris,wine,digits,sms_spam,magic_gamma,adult --batches main --noise 0
run --policies "$POL" --cases hs_brexit,trec --batches main --noise 0
