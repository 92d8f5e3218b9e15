#!/usr/bin/env bash
# Rejection-sampling table (docs/prior.md): a short digits run, then evaluate with and without --reject-keep 0.5.
# Usage: bash benchmarks/rejection_digits.sh [RUN_DIR]
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
R=${1:-runs/digits-reject}
A=".venv/bin/archkit"
[ -f $R/vqvae/config.json ] || nice -n 5 $A vqvae train --preset digits-32 --out $R --steps 300 --eval-every 300 --quiet
[ -f $R/codes.npz ] || nice -n 5 $A vqvae encode --run $R
[ -f $R/prior-0/config.json ] || nice -n 5 $A prior train --run $R --level top --steps 300 --batch-size 32 --dropout 0.5 --eval-every 300 --quiet
[ -f $R/prior-1/config.json ] || nice -n 5 $A prior train --run $R --level bottom --steps 300 --batch-size 32 --kernel-size 3 --dropout 0.3 --eval-every 300 --quiet
nice -n 5 $A evaluate --run $R --per-class 20 --classifier-epochs 5 --reject-keep 0.5 --out $R/eval_reject.json && cp $R/eval_reject.json benchmarks/results/rejection_digits.json
nice -n 5 $A sample --run $R --n 8 --reject-with classifier --keep 0.5 --classifier-epochs 5 --out $R/samples_rejected.png
nice -n 5 $A sample --run $R --n 8 --out $R/samples_plain.png
