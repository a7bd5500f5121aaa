#!/usr/bin/env bash
# The Fashion-MNIST dataset files that the demo and the measurement scripts share, each prepared
# once (an existing file is kept), named by what they hold:
#   target  data/fmnist_target.h5: the test split's classes 5-9 over 4 Dirichlet(0.5) parties
#           (the demo's federated parties, and its FID reference)
#   public  data/fmnist_public.h5: the train split's 10 classes over 2 IID shards (the demo's
#           pretraining catalogue)
#   source  data/fmnist_source.h5: the train split's classes 0-4 over 2 IID shards (the
#           class-disjoint pretraining)
#   train, test  data/fashion_mnist_{train,test}.h5: one party holding the whole split (the
#           evaluator's training and test data)
# usage: scripts/demo_data.sh FEDGAN NAME...
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="$1"; shift
mkdir -p data
for name in "$@"; do
  case "$name" in
    target) file=data/fmnist_target.h5
      args=(--split test --classes 5,6,7,8,9 --parties 4 --partition dirichlet --alpha 0.5) ;;
    public) file=data/fmnist_public.h5 args=(--split train --parties 2 --partition iid) ;;
    source) file=data/fmnist_source.h5
      args=(--split train --classes 0,1,2,3,4 --parties 2 --partition iid) ;;
    train|test) file=data/fashion_mnist_$name.h5 args=(--split "$name" --parties 1) ;;
    *) echo "demo_data.sh: unknown dataset '$name' (target, public, source, train, test)" >&2
      exit 2 ;;
  esac
  [ -f "$file" ] || "$fedgan" prepare "${args[@]}" --out "$file"
done
