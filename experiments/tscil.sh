#!/usr/bin/env bash
# The time-series class-incremental family (TSCIL, Qiao et al. KDD 2024) on recurrent models:
# 5 seeds of each method beside naive, joint, replay and the general methods TSCIL compares
# with, on the three offline class-incremental streams; then their report, tables and figures,
# into results/reference/tscil and results/.REFERENCE_tscil.md (experiments/reference.sh puts it
# into results/REFERENCE.md). Finished runs are kept (--resume). About 30 minutes on 2 CPU cores.
# Every memory method keeps its default 200 sequences.
set -euo pipefail
cd "$(dirname "$0")/.."
methods=naive,joint,replay,lwf,mas,der,derpp,herding,dt2w,fasticarl,clops,aser
studies=(seq_digits_split mnist1d_split ucr_stream_class)
for study in "${studies[@]}"; do
  # exit status 1 only means some run did not complete; the report lists such runs
  clstm run "experiments/$study.yaml" --out results/tscil --seeds 0-4 \
    --grid "strategy.name=$methods" --workers 2 --resume --quiet || true
done
# The files behind every number are kept in a committed archive of their own (these studies'
# names are those of the main reference studies, whose runs must not mix with these); runs
# archived earlier count with those on disk.
archive=results/reference/tscil/runs
inputs=()
for study in "${studies[@]}"; do
  for dir in "$archive/$study" "results/tscil/$study"; do
    if [ -d "$dir" ]; then inputs+=("$dir"); fi
  done
done
clstm report "${inputs[@]}" --out results/reference/tscil --markdown results/.REFERENCE_tscil.md \
  --archive "$archive"
# The downloaded benchmarks of TSCIL (not run here: they need `clstm data fetch NAME` on a machine
# with network). The memory is TSCIL's: 5% of each class's training sequences, in all
# (experiments/har.yaml and the others say how). With DOWNLOADED=1:
if [ -n "${DOWNLOADED:-}" ]; then
  for pair in har:366 uwave:40 dsa:216 wisdm:600; do
    study=${pair%%:*} memory=${pair##*:}
    clstm run "experiments/$study.yaml" --out results/tscil --seeds 0-4 \
      --grid strategy.name=naive,joint,lwf,mas,dt2w --workers 2 --resume --quiet || true
    clstm run "experiments/$study.yaml" --out results/tscil --seeds 0-4 \
      --grid strategy.name=replay,der,derpp,herding,fasticarl,clops,aser \
      --set "strategy.mem_size=$memory" --workers 2 --resume --quiet || true
  done
fi
