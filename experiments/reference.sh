#!/usr/bin/env bash
# Regenerates results/REFERENCE.md: 5 seeds of each strategy on every reference study that runs
# offline, then the report. Finished runs are kept (--resume), so an interrupted regeneration
# continues. About 110 minutes on 2 shared CPU cores (measured 2026-11-29, Intel Xeon, while other
# work ran).
set -euo pipefail
cd "$(dirname "$0")/.."
all=naive,joint,cumulative,replay,ewc,si,mas,lwf,gem,agem,gdumb,der,separate
core=naive,joint,replay,ewc,lwf,der  # issue 13's set for the literature benchmarks
regression=naive,joint,replay,ewc  # the forecasting comparison of issue 14
run() {  # study, strategies
  # exit status 1 only means some run did not complete (DER is refused in the task scenario);
  # the report lists such runs.
  clstm run "experiments/$1.yaml" --seeds 0-4 --grid "strategy.name=$2" --workers 2 --resume \
    --quiet || true
}
run seq_digits_split "$all"
run seq_digits_permuted "$all"
run ucr_stream "$all"
run mnist1d_split "$core"
run mnist1d_permuted "$core"
run forecast_regimes "$regression"
studies=(seq_digits_split seq_digits_permuted ucr_stream mnist1d_split mnist1d_permuted
         forecast_regimes)
clstm report "${studies[@]/#/results/}" --out results/reference --markdown results/REFERENCE.md
{
  printf '# Reference results\n\nRegenerate everything with `bash experiments/reference.sh`.\n\n'
  cat results/REFERENCE.md
  cat experiments/reference_notes.md
  cat experiments/reference_literature.md
} > results/REFERENCE.md.tmp
mv results/REFERENCE.md.tmp results/REFERENCE.md
