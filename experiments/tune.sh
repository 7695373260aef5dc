#!/usr/bin/env bash
# Runs every tune of experiments/tune/ into results/tuned: trials on validation data, then the
# chosen setting with seeds 0-4; about 13 minutes on 2 shared CPU cores (AMD EPYC, 2026-12-07).
# Finished runs are kept (--resume), so an interrupted run of this script continues. Its report is
# part of results/REFERENCE.md (experiments/reference.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
for study in seq_digits_permuted_naive seq_digits_permuted_ewc seq_digits_permuted_si \
             seq_digits_permuted_mas seq_digits_permuted_naive_tasks seq_digits_permuted_ewc_tasks \
             seq_digits_split_naive seq_digits_split_ewc mnist1d_split_naive mnist1d_split_ewc \
             ucr_stream_naive ucr_stream_ewc forecast_regimes_naive forecast_regimes_ewc; do
  clstm tune "experiments/tune/$study.yaml" --out results/tuned --workers 2 --resume --quiet
done
