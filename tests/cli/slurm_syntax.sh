#!/usr/bin/env bash
# Static checks of the Slurm scripts and helper scripts: `bash -n` on slurm/*.sbatch and
# scripts/*.sh, a comment on every #SBATCH line, no absolute user paths, and the preemption
# pieces (srun, --config, --resume auto, signal forwarding, requeue) in the training scripts.
# usage: slurm_syntax.sh REPO_ROOT
set -euo pipefail
root="${1:?usage: slurm_syntax.sh REPO_ROOT}"
cd "$root"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

shopt -s nullglob
sbatch_files=(slurm/*.sbatch)
((${#sbatch_files[@]})) || fail "no slurm/*.sbatch"
for f in "${sbatch_files[@]}" scripts/*.sh tests/cli/*.sh; do
  bash -n "$f" || fail "$f: bash -n"
done

for f in "${sbatch_files[@]}"; do
  # Every directive carries a comment: "#SBATCH --opt=value   # why".
  while IFS= read -r line; do
    [[ "$line" =~ ^#SBATCH[[:space:]]+[^[:space:]#]+.*[[:space:]]#[[:space:]]*[^[:space:]] ]] ||
      fail "$f: #SBATCH line without a comment: $line"
  done < <(grep -E '^#SBATCH' "$f")
  grep -q '^#SBATCH' "$f" || fail "$f: no #SBATCH lines"
  grep -Eq '/home/|/Users/|/scratch/|/gpfs/|/lustre/|~/' "$f" && fail "$f: absolute user path"
  grep -Eq '^[[:space:]]*(cmake|make|ninja|scripts/setup\.sh)([[:space:]]|$)' "$f" && fail "$f: builds in the job"
  grep -q 'srun\|scripts/scaling.sh' "$f" || fail "$f: launches without srun"
  # Training scripts: preemptible, resumable, configured by file.
  if grep -q -- '--signal=' "$f"; then
    for want in '#SBATCH --signal=B:USR1@' '#SBATCH --requeue' 'srun ' '--config' \
                'train --resume auto' 'trap ' 'kill -USR1' 'wait ' 'scontrol requeue' \
                'OMP_NUM_THREADS=' '--cpus-per-task='; do
      grep -qF -- "$want" "$f" || fail "$f: lacks '$want'"
    done
  fi
done
for f in scripts/*.sh; do
  head -n 40 "$f" | grep -q 'set -euo pipefail' || fail "$f: no 'set -euo pipefail'"
  head -n 40 "$f" | grep -qi 'usage:' || fail "$f: no usage line"
done
((fails == 0)) || exit 1
scripts=(scripts/*.sh)
echo "ok: ${#sbatch_files[@]} sbatch files and ${#scripts[@]} scripts checked"
