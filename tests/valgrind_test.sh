#!/bin/sh
# valgrind memcheck over what a person does: a short training run (with evaluations, samples
# and checkpoints), a resume of it and a sample from the result; then a BPE run and a sample
# from it, info and attention. Each must exit 0 with 0 errors and 0 leaks of any kind
# (definite, indirect, possible, still reachable), libgomp's own state aside (valgrind.supp).
# Run by `make valgrind` with GPT set to a binary built without -march=native (valgrind 3.19
# does not know AVX-512).
set -u
GPT=${GPT:-./gpt}
case "$GPT" in /*) ;; *) GPT="$PWD/$GPT" ;; esac
SUPP="$PWD/tests/valgrind.supp"
DATA="$PWD/data/tinyshakespeare.txt"
command -v valgrind >/dev/null 2>&1 || { echo "error: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
TOP=$(mktemp -d /tmp/gpt_valgrind.XXXXXX)
trap 'rm -rf "$TOP"' EXIT
cd "$TOP" || exit 1
head -c 20000 "$DATA" >small.txt
# One thread: the result is the same with any number, and memcheck runs threads one at a time.
export OMP_NUM_THREADS=1
fails=0

memcheck() {  # memcheck WHAT CMD... : the command succeeds with a clean memcheck report
    what=$1
    shift
    log="$TOP/vg.log"
    valgrind --tool=memcheck --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
        --error-exitcode=99 --suppressions="$SUPP" --log-file="$log" "$@" >"$TOP/out" 2>"$TOP/err"
    rc=$?
    # With --errors-for-leak-kinds=all every leak is an error: 0 errors means 0 leaks too.
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log")
    suppressed=$(sed -n 's/.*ERROR SUMMARY: .*(suppressed: \([0-9]*\) from.*/\1/p' "$log")
    if [ $rc -ne 0 ]; then
        echo "valgrind FAILED: $what: exit status $rc: $(tail -2 "$TOP/err")" >&2
        cat "$log" >&2
        fails=$((fails + 1))
    else
        echo "valgrind: $what: $errors errors, 0 leaks (libgomp's own blocks suppressed: $suppressed)"
    fi
}

TINY="--n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 4 --eval-iters 1 --eval-interval 2
      --sample-interval 2 --sample-tokens 8 --quiet"
memcheck "train" "$GPT" train --data small.txt --out run --iters 4 $TINY
memcheck "resume" "$GPT" train --resume --out run --iters 6 --quiet
memcheck "sample" "$GPT" sample run/ckpt.bin --prompt "ROMEO:" --tokens 20 --num-samples 2
# The rest of what reads checkpoints and tokenizers, briefly.
memcheck "train, bpe" "$GPT" train --data small.txt --out bpe --iters 2 --tokenizer bpe --vocab-size 300 $TINY
memcheck "sample, bpe" "$GPT" sample bpe/ckpt.bin --tokens 10
memcheck "info" "$GPT" info run/ckpt.bin
memcheck "attention" "$GPT" attention run/ckpt.bin --prompt "First Citizen" --out attn.html
echo "valgrind: $fails failures"
[ "$fails" -eq 0 ]
