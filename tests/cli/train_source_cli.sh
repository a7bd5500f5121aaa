#!/usr/bin/env bash
# `fedgan train --init` held to the source (EWC --ewc-weight, cross-domain correspondence
# --cdc-weight, with KD --kd-weight) end to end: R ranks = 1 rank and resume = uninterrupted,
# bit for bit; λ = 0 is plain fine-tuning bit for bit (and λ > 0 is not); bad weights, a
# missing --init, a source of another architecture and refused combinations, each a clear
# error on every rank.
# usage: train_source_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: source_ranks | source_resume | source_errors
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"
plain=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
       --batch-size 16 --threads 1 --sample-every 0)
# The source: 2 rounds of the same model from scratch.
mpi 2 "$fedgan" train "${plain[@]}" --rounds 2 --out "$work/src" >"$work/src.log" 2>&1 \
  || { cat "$work/src.log"; fail "train the source"; }
src="$work/src/checkpoints/latest.h5"
held=("${plain[@]}" --init "$src" --ewc-weight 2 --ewc-samples 32 --cdc-weight 5 --kd-weight 0.5)

case "${case#source_}" in
ranks)
  for n in 1 2 4; do
    mpi $n "$fedgan" train "${held[@]}" --rounds 2 --out "$work/held$n" >"$work/held$n.log" 2>&1 \
      || { cat "$work/held$n.log"; fail "train on $n ranks"; }
  done
  same_models "$work/held1/checkpoints/latest.h5" "$work/held2/checkpoints/latest.h5"
  same_models "$work/held1/checkpoints/latest.h5" "$work/held4/checkpoints/latest.h5"
  grep -q "EWC: the source generator's Fisher information from 32 latents" "$work/held2.log" \
    || fail "no Fisher line in the log"
  # λ = 0 is plain fine-tuning, bit for bit; each λ > 0 moves the model.
  mpi 2 "$fedgan" train "${plain[@]}" --init "$src" --rounds 2 --out "$work/plain" >/dev/null 2>&1 \
    || fail "plain fine-tune"
  mpi 2 "$fedgan" train "${plain[@]}" --init "$src" --ewc-weight 0 --cdc-weight 0 --rounds 2 \
    --out "$work/zero" >/dev/null 2>&1 || fail "lambda 0"
  same_models "$work/plain/checkpoints/latest.h5" "$work/zero/checkpoints/latest.h5"
  for m in "--ewc-weight 2" "--cdc-weight 5"; do
    # shellcheck disable=SC2086
    mpi 2 "$fedgan" train "${plain[@]}" --init "$src" $m --rounds 2 --out "$work/one" --force \
      >/dev/null 2>&1 || fail "train with $m"
    ! compare "$work/plain/checkpoints/latest.h5" "$work/one/checkpoints/latest.h5" >/dev/null 2>&1 \
      || fail "$m left the model as plain fine-tuning's"
  done
  ;;
resume)
  mpi 2 "$fedgan" train "${held[@]}" --rounds 4 --checkpoint-every 2 --out "$work/full" >/dev/null 2>&1 \
    || fail "train 4 rounds"
  mpi 2 "$fedgan" train "${held[@]}" --rounds 2 --checkpoint-every 2 --out "$work/part" >/dev/null 2>&1 \
    || fail "train 2 rounds"
  mpi 2 "$fedgan" train "${held[@]}" --rounds 4 --checkpoint-every 2 --out "$work/part" --resume \
    >/dev/null 2>&1 || fail "resume"
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  ;;
errors)
  expect_fail "ewc-weight.*(negative|>= 0|non-negative)" mpi 2 "$fedgan" train "${plain[@]}" \
    --init "$src" --ewc-weight -1 --rounds 1 --out "$work/e1"
  expect_fail "cdc-weight.*(negative|>= 0|non-negative)" mpi 2 "$fedgan" train "${plain[@]}" \
    --init "$src" --cdc-weight -0.5 --rounds 1 --out "$work/e2"
  expect_fail "ewc-samples" mpi 2 "$fedgan" train "${plain[@]}" --init "$src" --ewc-weight 1 \
    --ewc-samples 0 --rounds 1 --out "$work/e3"
  expect_fail "--ewc-weight needs --init" mpi 2 "$fedgan" train "${plain[@]}" --ewc-weight 1 \
    --rounds 1 --out "$work/e4"
  expect_fail "--cdc-weight needs --init" mpi 2 "$fedgan" train "${plain[@]}" --cdc-weight 1 \
    --rounds 1 --out "$work/e5"
  # A source of another architecture (G twice as wide): partly loaded, so not a source to hold to.
  mpi 2 "$fedgan" train "${plain[@]}" --g-width 16 --rounds 1 --out "$work/wide" >/dev/null 2>&1 \
    || fail "train the wide source"
  for m in --ewc-weight --cdc-weight; do
    expect_fail "$m: .*wide/checkpoints/latest.h5 does not hold every value of this run's generator" \
      mpi 2 "$fedgan" train "${plain[@]}" --init "$work/wide/checkpoints/latest.h5" $m 1 \
      --rounds 1 --out "$work/e6" --force
  done
  expect_fail "--cdc-weight with --width-ratios" mpi 2 "$fedgan" train "${plain[@]}" \
    --init "$src" --cdc-weight 1 --width-ratios 1,0.5 --rounds 1 --out "$work/e7"
  expect_fail "--ewc-weight with --federation distill" mpi 2 "$fedgan" train "${plain[@]}" \
    --init "$src" --ewc-weight 1 --federation distill --rounds 1 --out "$work/e8"
  ;;
*) fail "unknown case $case" ;;
esac
echo "ok: $case"
