# Shared by the `fedgan train` / `sample` test scripts (train_*_cli.sh): their arguments, the
# work folder, the 4-party test dataset and the small model's flags. Each script sources it
# first, with its own arguments: FEDGAN MPIEXEC WORKDIR CASE.
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# 2 classes of the test split (2000 images), 4 non-IID parties.
prepare_four_parties "$work/data.h5"
base=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
      --batch-size 16 --server-optimizer fedavgm)
small=("${base[@]}" --threads 1)
