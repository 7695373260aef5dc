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
real_series=naive,joint,replay,ewc,lwf,der  # forecast_aeon
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
run forecast_aeon "$real_series"
studies=(seq_digits_split seq_digits_permuted ucr_stream mnist1d_split mnist1d_permuted
         forecast_regimes forecast_aeon)
# Ehret et al. 2021's Copy Task protocols: 35-125 min per run on one core, so only with COPY_SEEDS
# set (e.g. COPY_SEEDS=0-4, about a day; the committed tables used seed 0 of each).
# Studies with runs on disk enter the report either way.
copy_studies=(ehret2021_permuted_copy ehret2021_permuted_copy_ewc ehret2021_permuted_copy_si
              ehret2021_permuted_copy_replay ehret2021_permuted_copy_coresets
              ehret2021_permuted_copy_joint)
for study in "${copy_studies[@]}"; do
  if [ -n "${COPY_SEEDS:-}" ]; then
    clstm run "experiments/$study.yaml" --seeds "$COPY_SEEDS" --threads 1 --resume --quiet || true
  fi
  if [ -d "results/$study" ]; then studies+=("$study"); fi
done
# Seed-0 runs made before the files set model.elman_output: true (nn.RNN alone, directories
# renamed *_rnn), and of the EWC and SI protocols with Avalanche's importance estimates (each
# run's config.yaml says how it was made): reported for comparison when on disk. The report puts
# runs of one experiment in one table, each row named by the config values that differ.
for study in "${copy_studies[@]/%/_rnn}" ehret2021_permuted_copy_ewc_batch_fisher \
             ehret2021_permuted_copy_si_avalanche; do
  if [ -d "results/$study" ]; then studies+=("$study"); fi
done
# The files behind every number are kept in a committed archive (clstm report --archive): runs
# made earlier, elsewhere or by another session count with those on disk (a run in both counts
# once), and new ones are added to it.
archive=results/reference/runs
mkdir -p "$archive"
clstm report "$archive" "${studies[@]/#/results/}" --out results/reference \
  --markdown results/REFERENCE.md --archive "$archive" --published experiments/published/values.yaml
{
  printf '# Reference results\n\nRegenerate everything with `bash experiments/reference.sh`.\n\n'
  cat results/REFERENCE.md
  cat experiments/reference_notes.md
  cat experiments/reference_literature.md
} > results/REFERENCE.md.tmp
mv results/REFERENCE.md.tmp results/REFERENCE.md
