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
# The files behind every number are kept in a committed archive (clstm report --archive), one
# folder per experiment: runs made earlier, elsewhere or by another session count with those on
# disk (a run found in both counts once), and new ones are added to it.
archive=results/reference/runs
mkdir -p "$archive"
inputs() {  # the archived and the on-disk runs of each study given
  for study in "$@"; do
    if [ -d "$archive/$study" ]; then echo "$archive/$study"; fi
    if [ -d "results/$study" ]; then echo "results/$study"; fi
  done
}
mapfile -t found < <(inputs "${studies[@]}")
clstm report "${found[@]}" --out results/reference --markdown results/REFERENCE.md \
  --archive "$archive"
# Ehret et al. 2021's Copy Task protocols, on their tasks: 45-95 min per run on one core, so they
# run only with COPY_SEEDS set (e.g. COPY_SEEDS=0-4, about a day); their archived runs are reported
# either way, in a report of their own beside the published values (experiments/published/).
copy_studies=(ehret2021_permuted_copy ehret2021_permuted_copy_ewc ehret2021_permuted_copy_si
              ehret2021_permuted_copy_coresets ehret2021_permuted_copy_replay
              ehret2021_permuted_copy_joint ehret2021_permuted_copy_hnet)
if [ -n "${COPY_SEEDS:-}" ]; then
  for study in "${copy_studies[@]}"; do
    clstm run "experiments/$study.yaml" --seeds "$COPY_SEEDS" --threads 1 --resume --quiet || true
  done
fi
mapfile -t found < <(inputs "${copy_studies[@]}")
copy_md=results/.REFERENCE_copy.md  # figure links relative to results/, as REFERENCE.md's
if [ "${#found[@]}" -gt 0 ]; then
  clstm report "${found[@]}" --out results/reference/copy --markdown "$copy_md" \
    --archive "$archive" --published experiments/published/values.yaml
else
  printf 'No Copy Task run is archived yet (COPY_SEEDS=0-4 bash experiments/reference.sh).\n\n' \
    > "$copy_md"
fi
# The tunes of experiments/tune/ (clstm tune: trials on validation data, then seeds 0-4), in a
# report of their own (tables only: every number is in them)
bash experiments/tune.sh
tuned_md=results/.REFERENCE_tuned.md
clstm report results/tuned --no-figures --out results/reference/tuned --markdown "$tuned_md"
# Continual evaluation (eval.every): the stability gap, in a report of its own with its figures
clstm run experiments/stability_gap.yaml --seeds 0-4 --grid strategy.name=naive,replay,der,ewc \
  --workers 2 --resume --quiet || true
gap_md=results/.REFERENCE_gap.md
clstm report results/stability_gap --out results/reference/continual --markdown "$gap_md"
# Online streams (online.batch): prequential accuracy, in a report of its own (tables only)
clstm run experiments/online_digits.yaml --seeds 0-4 \
  --grid strategy.name=naive,replay,der,agem,lwf,ewc --workers 2 --resume --quiet || true
clstm run experiments/online_digits.yaml --seeds 0-4 --grid strategy.name=naive,replay \
  --set online.boundaries=hidden --workers 2 --resume --quiet || true
clstm run experiments/online_forecast.yaml --seeds 0-4 --grid strategy.name=naive,replay,ewc \
  --workers 2 --resume --quiet || true
online_md=results/.REFERENCE_online.md
clstm report results/online_digits results/online_forecast --out results/reference/online \
  --markdown "$online_md" --no-figures
# The time-series class-incremental family (TSCIL) on recurrent models, in a report of its own
bash experiments/tscil.sh
tscil_md=results/.REFERENCE_tscil.md
{
  printf '# Reference results\n\nRegenerate everything with `bash experiments/reference.sh`.\n\n'
  cat results/REFERENCE.md
  cat experiments/reference_notes.md
  cat experiments/reference_literature.md
  awk -v tables="$tuned_md" '$0 == "<!-- the generated tables -->" {
      while ((getline line < tables) > 0) print line; next } { print }' \
    experiments/reference_tuned.md
  awk -v tables="$gap_md" '$0 == "<!-- the generated tables -->" {
      while ((getline line < tables) > 0) print line; next } { print }' \
    experiments/reference_continual.md
  awk -v tables="$online_md" '$0 == "<!-- the generated tables -->" {
      while ((getline line < tables) > 0) print line; next } { print }' \
    experiments/reference_online.md
  awk -v tables="$tscil_md" '$0 == "<!-- the generated tables -->" {
      while ((getline line < tables) > 0) print line; next } { print }' \
    experiments/reference_tscil.md
  printf '\n## The Copy Task (Ehret et al. 2021): their protocols on their tasks\n\n'
  # experiments/reference_copy.md with the generated tables where its marker line is
  awk -v tables="$copy_md" '$0 == "<!-- the generated tables -->" {
      while ((getline line < tables) > 0) print line; next } { print }' \
    experiments/reference_copy.md
} > results/REFERENCE.md.tmp
rm "$copy_md" "$tuned_md" "$gap_md" "$online_md" "$tscil_md"
mv results/REFERENCE.md.tmp results/REFERENCE.md
