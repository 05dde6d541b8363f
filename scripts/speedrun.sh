#!/bin/sh
# speedrun.sh -- the best model this machine trains in a fixed wall-clock budget (issue 14).
# `make speedrun` builds ./gpt and runs this from the repository's top directory.
#
#   scripts/speedrun.sh           train RECIPE for BUDGET into out-speedrun/, then its loss over
#                                 the whole validation split (gpt eval) and a short sample
#   scripts/speedrun.sh default   make train's recipe (TRAIN_RECIPE in the Makefile: its 2000 steps,
#                                 about a minute) into out-speedrun-default/, and its eval: the baseline
#   scripts/speedrun.sh torch     PyTorch (torch_gpt.py through scripts/torch_curve.py) given
#                                 RECIPE, into out-speedrun-torch.csv; needs TORCH_ITERS
#   scripts/speedrun.sh plot      the README's picture from those three: speedrun.svg
#
# The README's picture, from the top directory (each training command takes BUDGET):
#   make speedrun                                      # out-speedrun/
#   scripts/speedrun.sh default                        # out-speedrun-default/
#   TORCH_ITERS=N TORCH_FLAGS='--autocast bf16' scripts/speedrun.sh torch   # out-speedrun-torch.csv
#   make speedrun-plot                                 # speedrun.svg
# TORCH_ITERS: torch_gpt.py has no time budget, so give it the number of iterations that fills
# BUDGET (train + evaluations; torch_curve.py prints both times, the CSV's last elapsed_s is
# their sum). make speedrun-plot then runs
#   ./gpt plot --out speedrun.svg --title '...' --ymax 2.6 --hline 1.50=target \
#       "speedrun=out-speedrun" "make train=out-speedrun-default" "PyTorch=out-speedrun-torch.csv"
#
# Environment:
#   BUDGET=10m        the wall-clock budget of a training run (gpt train --time-budget), e.g. 20s
#   SEEDS="1 2 3"     one run per seed into out-speedrun/seed-N/, then each one's val loss, their
#                     mean and spread (default: one run, seed 1337, into out-speedrun/)
#   GPT=./gpt  DATA=data/tinyshakespeare.txt  OUT=out-speedrun
#   TORCH_ITERS, TORCH_FLAGS (extra torch_gpt.py options), PYTHON (a python with torch),
#   PLOT_OUT=speedrun.svg, PLOT_YMAX=2.6
set -eu

# The recipe: every training flag of the speedrun, in this one place (README: "Ten minutes",
# for what each part is worth).
RECIPE="--n-layer 4 --n-head 4 --n-embd 192 --block-size 128 --batch-size 16 --lr 4e-3 --min-lr 4e-4 --warmup 100 --optimizer muon --muon-lr 0.02 --rope --qk-norm --dropout 0.1 --eval-interval 500"

BUDGET=${BUDGET:-10m}
SEEDS=${SEEDS:-}
GPT=${GPT:-./gpt}
DATA=${DATA:-data/tinyshakespeare.txt}
OUT=${OUT:-out-speedrun}
DEFAULT_OUT=${DEFAULT_OUT:-$OUT-default}
TORCH_CSV=${TORCH_CSV:-$OUT-torch.csv}
PLOT_OUT=${PLOT_OUT:-speedrun.svg}
PLOT_YMAX=${PLOT_YMAX:-2.6}
# Samples while training would take time from the budget: the sample comes after the run.
RUN_FLAGS="--sample-interval 0"

say() { echo "speedrun: $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

[ -x "$GPT" ] || die "'$GPT' is not an executable (build it with make)"
[ -f "$DATA" ] || die "'$DATA' does not exist (the text to train on; set DATA=FILE)"

# A run directory about to be trained into: a previous run there is replaced, said first.
fresh_dir() {
    if [ -e "$1" ]; then
        say "replacing the previous run in $1/ (move it away first to keep it)"
        rm -rf "$1"
    fi
}

# gpt eval's loss over the whole validation split of the run in $1, printed and returned on stdout.
eval_run() {
    out=$("$GPT" eval "$1/ckpt.bin" --data "$DATA" --split val) || exit 1
    line=$(echo "$out" | head -n 1)
    say "$1: gpt eval --split val: $line"
    echo "$line" | awk '{ print $2 }'
}

train_recipe() {  # DIR SEED
    # shellcheck disable=SC2086 # RECIPE and RUN_FLAGS are lists of words
    "$GPT" train --data "$DATA" --out "$1" --time-budget "$BUDGET" --seed "$2" $RECIPE $RUN_FLAGS
}

speedrun() {
    fresh_dir "$OUT"
    if [ -z "$SEEDS" ]; then
        say "training the recipe for $BUDGET into $OUT/: $RECIPE"
        train_recipe "$OUT" 1337
        eval_run "$OUT" >/dev/null
        say "a sample from $OUT/ckpt.bin:"
        "$GPT" sample "$OUT/ckpt.bin" --tokens 300 --seed 1337
        echo
        return
    fi
    mkdir -p "$OUT"
    results=""
    for seed in $SEEDS; do
        case "$seed" in *[!0-9]* | '') die "SEEDS holds '$seed' (expected whole numbers, e.g. SEEDS=\"1 2 3\")" ;; esac
        say "seed $seed: training the recipe for $BUDGET into $OUT/seed-$seed/: $RECIPE"
        train_recipe "$OUT/seed-$seed" "$seed"
        loss=$(eval_run "$OUT/seed-$seed") || exit 1
        results="$results $seed:$loss"
    done
    echo "val loss (gpt eval --split val) after $BUDGET, per seed:"
    # mean, population standard deviation, and the range over the seeds
    echo "$results" | tr ' ' '\n' | awk -F: 'NF == 2 {
        printf "  seed %-6s %.4f\n", $1, $2; n++; s += $2; ss += $2 * $2
        if (n == 1 || $2 < lo) lo = $2; if (n == 1 || $2 > hi) hi = $2 }
        END { m = s / n; v = ss / n - m * m; if (v < 0) v = 0
              printf "mean %.4f  std %.4f  min %.4f  max %.4f  (%d seeds)\n", m, sqrt(v), lo, hi, n }'
    best=$(echo "$results" | tr ' ' '\n' | awk -F: 'NF == 2 && (!n++ || $2 < lo) { lo = $2; best = $1 } END { print best }')
    say "a sample from the best seed's model, $OUT/seed-$best/ckpt.bin:"
    "$GPT" sample "$OUT/seed-$best/ckpt.bin" --tokens 300 --seed 1337
    echo
}

default_run() {
    # make train's recipe, from the Makefile's TRAIN_RECIPE line.
    train_recipe=$(sed -n 's/^TRAIN_RECIPE = //p' Makefile)
    [ -n "$train_recipe" ] || die "found no 'TRAIN_RECIPE = ...' line in ./Makefile (run this from the repository's top directory)"
    fresh_dir "$DEFAULT_OUT"
    say "training make train's recipe ($train_recipe: its 2000 steps, about a minute) into $DEFAULT_OUT/"
    # shellcheck disable=SC2086
    "$GPT" train --data "$DATA" --out "$DEFAULT_OUT" $train_recipe $RUN_FLAGS
    eval_run "$DEFAULT_OUT" >/dev/null
}

# RECIPE in torch_gpt.py's words; a flag it has no counterpart for stops the run.
torch_flags() {
    # shellcheck disable=SC2086
    set -- $RECIPE
    while [ $# -gt 0 ]; do
        case "$1" in
        --n-layer | --n-head | --n-embd | --block-size | --batch-size | --min-lr | --weight-decay | --grad-clip)
            printf ' %s %s' "$(echo "$1" | tr - _ | sed 's/^__/--/')" "$2" ;;
        --lr | --dropout | --beta1 | --beta2 | --seed) printf ' %s %s' "$1" "$2" ;;
        --warmup) printf ' --warmup_iters %s' "$2" ;;
        # torch_gpt.py has no Muon and none of the model components: PyTorch trains the plain
        # GPT (learned positions, GELU, tied head) with AdamW at --lr for every tensor.
        --optimizer | --muon-lr | --muon-momentum | --activation) ;;
        --rope | --qk-norm | --untied-head | --zero-init-proj) shift; continue ;;
        --eval-interval) printf ' --eval_interval %s' "$2" ;;
        *) die "the recipe's $1 has no torch_gpt.py counterpart: give PyTorch's run by hand (scripts/torch_curve.py)" ;;
        esac
        shift 2
    done
}

torch_run() {
    [ -n "${TORCH_ITERS:-}" ] || die "TORCH_ITERS is not set (torch_gpt.py's --max_iters: the iterations that fill $BUDGET)"
    flags=$(torch_flags)
    # shellcheck disable=SC2086
    python3 scripts/torch_curve.py --out "$TORCH_CSV" --python "${PYTHON:-/usr/bin/python3}" "$DATA" \
        $flags --max_iters "$TORCH_ITERS" ${TORCH_FLAGS:-}
}

plot() {
    [ -d "$OUT" ] || die "'$OUT' does not exist (make speedrun trains it)"
    run=$OUT
    # Of a SEEDS run, the first seed's.
    if [ ! -f "$OUT/metrics.csv" ]; then
        run=""
        for d in "$OUT"/seed-*; do [ -f "$d/metrics.csv" ] && run=$d && break; done
        [ -n "$run" ] || die "'$OUT' holds no run (make speedrun trains it)"
    fi
    [ -d "$DEFAULT_OUT" ] || die "'$DEFAULT_OUT' does not exist (scripts/speedrun.sh default trains it)"
    [ -f "$TORCH_CSV" ] || die "'$TORCH_CSV' does not exist (TORCH_ITERS=N scripts/speedrun.sh torch writes it)"
    "$GPT" plot --out "$PLOT_OUT" --title "val loss on tinyshakespeare against wall-clock minutes, this machine" \
        --ymax "$PLOT_YMAX" --hline 1.50=target "speedrun=$run" "make train=$DEFAULT_OUT" "PyTorch=$TORCH_CSV"
}

case "${1:-}" in
'') speedrun ;;
default) default_run ;;
torch) torch_run ;;
plot) plot ;;
*) die "unknown action '$1' (expected nothing, default, torch or plot)" ;;
esac
