#!/bin/sh
# Robustness tests: a training run meets Ctrl-C, SIGTERM, kill -9 at random moments, a full
# disk and a model that overflows; plus the bad inputs that cli_test.sh leaves out (a file
# that cannot be read, a damaged checkpoint seen through every command, a prompt longer than
# the model's block_size). Run by `make test` with GPT, the binary, and CKPT_TOOL, the helper
# of tests/tools/ckpt_tool.c (it compares weights bit for bit and makes broken checkpoints).
#
# Leftover files: a process killed while saving leaves its temporary file (NAME.tmp.PID)
# beside the checkpoint. That is allowed -- nothing ever reads a .tmp. file -- and checked:
# the checkpoint itself is always the last complete one, and resuming ignores the leftovers.
set -u
GPT=${GPT:-./gpt}
CKPT_TOOL=${CKPT_TOOL:?set CKPT_TOOL to the ckpt_tool that make test builds}
case "$GPT" in /*) ;; *) GPT="$PWD/$GPT" ;; esac
case "$CKPT_TOOL" in /*) ;; *) CKPT_TOOL="$PWD/$CKPT_TOOL" ;; esac
DATA="$PWD/data/tinyshakespeare.txt"
TEST_NAME="robustness tests"
. "$(dirname "$0")/lib.sh"
TOP=$(mktemp -d /tmp/gpt_robustness_test.XXXXXX)
BG=  # the pid of a training run in the background, if any
cleanup() {
    if [ -n "$BG" ]; then kill -9 "$BG" 2>/dev/null; fi
    rm -rf "$TOP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
WORK="$TOP/work"
mkdir "$WORK" && cd "$WORK" || exit 1

# ---- helpers -------------------------------------------------------------------------------
# wait_until SECONDS CMD... : polls CMD every 50 ms; false if it never succeeds in time.
wait_until() {
    tries=$(($1 * 20))
    shift
    while [ "$tries" -gt 0 ]; do
        if "$@"; then return 0; fi
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}
lines_at_least() {  # lines_at_least FILE PATTERN N
    n=$(grep -c "$2" "$1" 2>/dev/null)
    [ "${n:-0}" -ge "$3" ]
}
random_below() { echo $(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1)); }
sleep_ms() { sleep "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))"; }
digest() { "$CKPT_TOOL" digest "$1" 2>&1; }
# The deterministic columns of metrics.csv: step, batch_loss, train_loss, val_loss, lr,
# grad_norm (tokens_per_s and elapsed_s are timings).
metrics() { cut -d, -f1-6 "$1/metrics.csv"; }
same_weights() {  # same_weights WHAT A B : the two checkpoints' digests are equal
    checks=$((checks + 1))
    a=$(digest "$2") b=$(digest "$3")
    [ "$a" = "$b" ] || fail "$1: $2 and $3 differ: $a vs $b"
}
loads() {  # loads WHAT FILE : gpt info accepts FILE (loaded, checksum good, every value finite)
    checks=$((checks + 1))
    "$GPT" info "$2" >"$TOP/info.out" 2>"$TOP/info.err" || fail "$1: '$2' does not load: $(cat "$TOP/info.err")"
}
step_of() { digest "$1" | sed -n 's/.* step=\([0-9]*\) .*/\1/p'; }
best_step_of() { digest "$1" | sed -n 's/.* best_step=\([0-9-]*\) .*/\1/p'; }

head -c 60000 "$DATA" >small.txt
# Models: SMALL's steps take milliseconds, so that a signal lands mid-run; MID has checkpoints
# of 1.3 MB, so that saving takes a good part of each step; TINY is quick. One thread each:
# OpenMP threads waiting for work would only slow a busy machine down.
SMALL="--data small.txt --n-layer 2 --n-head 2 --n-embd 32 --block-size 32 --batch-size 8 --sample-interval 0 --threads 1"
MID="--data small.txt --n-layer 2 --n-head 4 --n-embd 64 --block-size 32 --batch-size 4 --sample-interval 0 --threads 1"
TINY="--data small.txt --n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 4 --sample-interval 0 --threads 1"

# ---- SIGINT and SIGTERM: the step finishes, a checkpoint, a hint, 130 / 143; the resumed run
# ---- ends exactly where the uninterrupted one does -------------------------------------------
# The uninterrupted run uses two threads, the interrupted ones one: results do not depend on it.
SIG_RUN="$SMALL --iters 150 --eval-interval 50 --eval-iters 2"
expect_ok "uninterrupted run" "$GPT" train $SIG_RUN --out straight --threads 2 --quiet
for sig in INT TERM; do
    want=$([ $sig = INT ] && echo 130 || echo 143)
    word=$([ $sig = INT ] && echo interrupted || echo terminated)
    checks=$((checks + 1))
    log="$TOP/sig_$sig.err"
    "$GPT" train $SIG_RUN --out run_$sig --log-interval 1 >"$TOP/sig.out" 2>"$log" &
    BG=$!
    # Two progress lines ("step   2/150 | loss ..."): past the first evaluation and checkpoint,
    # early in the run.
    wait_until 60 lines_at_least "$log" '^step *[0-9]*/' 2 || fail "SIG$sig: the run never got going: $(tail -2 "$log")"
    kill -$sig $BG
    wait $BG 2>/dev/null
    rc=$?
    BG=
    last=$(tail -1 "$log")
    if [ $rc -ne $want ]; then
        fail "SIG$sig: exit status $rc, expected $want: $last"
        continue
    fi
    case "$last" in
    "$word at step "*"; continue with: "*"train --resume --out run_$sig") ;;
    *)
        fail "SIG$sig: the last line does not say how to resume: $last"
        continue
        ;;
    esac
    loads "SIG$sig" run_$sig/ckpt.bin
    stopped=$(echo "$last" | sed -n 's/.* at step \([0-9]*\):.*/\1/p')
    [ "$(step_of run_$sig/ckpt.bin)" = "$stopped" ] || fail "SIG$sig: ckpt.bin is not at step $stopped: $(digest run_$sig/ckpt.bin)"
    [ "$stopped" -lt 150 ] || fail "SIG$sig: the run ended before the signal came"
    expect_ok "SIG$sig: resume" "$GPT" train --resume --out run_$sig --quiet
    same_weights "SIG$sig: resumed vs uninterrupted, ckpt.bin" run_$sig/ckpt.bin straight/ckpt.bin
    same_weights "SIG$sig: resumed vs uninterrupted, best.bin" run_$sig/best.bin straight/best.bin
    checks=$((checks + 1))
    metrics run_$sig >"$TOP/m1" && metrics straight >"$TOP/m2"
    cmp -s "$TOP/m1" "$TOP/m2" || fail "SIG$sig: metrics.csv differs from the uninterrupted run's: $(diff "$TOP/m1" "$TOP/m2" | head -4)"
done
rm -rf straight run_INT run_TERM  # big files slow every later snapshot of the directory

# ---- kill -9 at random moments, saves included: the checkpoint is always whole, and the run,
# ---- resumed after every kill, still ends exactly where an uninterrupted run does ------------
# Evaluating every step makes every step a save (ckpt.bin, often best.bin, the report files).
# The run is far longer than the kills take, whatever the machine's speed; it then resumes to
# a few steps past where the kills left it, and an uninterrupted run goes to that same step
# (--lr-decay-iters pins the schedule, so --iters alone can differ).
KILL_RUN="$MID --eval-interval 1 --eval-iters 1 --warmup 10 --lr-decay-iters 100 --quiet"
kills=0 delays=
for i in $(seq 1 30); do
    resume=
    [ -f kill/ckpt.bin ] && resume=--resume
    "$GPT" train $KILL_RUN --iters 1000 --out kill $resume 2>"$TOP/kill.err" &
    BG=$!
    # The first run is let reach its first save; the others may die anywhere, loading included.
    [ -n "$resume" ] || wait_until 60 test -f kill/ckpt.bin
    delay=$(random_below 150)
    delays="$delays $delay"
    sleep_ms "$delay"
    kill -9 $BG 2>/dev/null
    wait $BG 2>/dev/null  # (the shell's "Killed" notice is not news)
    rc=$?
    BG=
    if [ $rc -eq 0 ]; then break; fi  # finished before the kill
    kills=$((kills + 1))
    [ $rc -eq 137 ] || fail "kill -9 #$i: exit status $rc, expected 137: $(cat "$TOP/kill.err")"
    loads "kill -9 #$i after ${delay} ms (delays so far:$delays)" kill/ckpt.bin
    [ -f kill/best.bin ] && loads "kill -9 #$i, best.bin" kill/best.bin
    # best.bin is never older than the best that ckpt.bin records (it is saved first, so it may
    # be one evaluation ahead: the resumed run evaluates that step again and saves it again).
    if [ -f kill/best.bin ]; then
        checks=$((checks + 1))
        bs=$(best_step_of kill/ckpt.bin) s=$(step_of kill/best.bin)
        [ "$s" -ge "$bs" ] || fail "kill -9 #$i after ${delay} ms: ckpt.bin records the best at step $bs, best.bin is step $s"
    fi
done
checks=$((checks + 1))
[ $kills -ge 20 ] || fail "kill -9: only $kills kills landed before the run finished (delays:$delays)"
leftovers=$(find kill -name '*.tmp.*' | wc -l)
end=$(($(step_of kill/ckpt.bin) + 3))
expect_ok "resume to step $end after $kills kills ($leftovers temporary files left by them)" \
    "$GPT" train $KILL_RUN --iters $end --out kill --resume
expect_ok "uninterrupted run to step $end" "$GPT" train $KILL_RUN --iters $end --out kill_ref
same_weights "killed and resumed vs uninterrupted, ckpt.bin" kill/ckpt.bin kill_ref/ckpt.bin
same_weights "killed and resumed vs uninterrupted, best.bin" kill/best.bin kill_ref/best.bin
# KNOWN ISSUE (reported): train.c's checkpoint_now writes ckpt.bin before metrics.csv, so a kill
# between the two loses that step's row for good (the resumed run starts after it). Writing the
# report first fixes it; until then a difference here is a note, not a failure.
metrics kill >"$TOP/m1" && metrics kill_ref >"$TOP/m2"
checks=$((checks + 1))
if ! cmp -s "$TOP/m1" "$TOP/m2"; then
    lost=$(diff "$TOP/m1" "$TOP/m2" | grep -c '^>')
    fail "killed and resumed vs uninterrupted: metrics.csv differs ($lost rows missing): $(diff "$TOP/m1" "$TOP/m2" | head -4)"
fi
rm -rf kill kill_ref

# ---- a full disk while saving: one error line, the previous checkpoints intact, no temp file
# ulimit -f counts blocks of 512 bytes in dash, 1024 in bash: either way far below the 1.3 MB
# of a checkpoint of MID, and SIGXFSZ is ignored by gpt, so the write fails with EFBIG. (The
# small report files may be written; they follow whatever checkpoint a resume starts from.)
limited() { (ulimit -f 1000 && exec "$@"); }
# expect_full WHAT DIR CMD... : one "File too large" error line; DIR's checkpoints as they were
# (or still absent), and no temporary file left.
expect_full() {
    what=$1 dir=$2
    shift 2
    checks=$((checks + 1))
    mkdir -p "$TOP/before" && rm -f "$TOP/before/"*
    for f in ckpt.bin best.bin; do [ -f "$dir/$f" ] && cp "$dir/$f" "$TOP/before/"; done
    "$@" >"$TOP/full.out" 2>"$TOP/full.err"
    rc=$?
    if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$(wc -l <"$TOP/full.err")" -ne 1 ] ||
        ! grep -q '^error: .*File too large' "$TOP/full.err"; then
        fail "$what: status $rc, expected one 'File too large' error: $(cat "$TOP/full.err")"
    fi
    for f in ckpt.bin best.bin; do
        if [ -f "$TOP/before/$f" ]; then
            cmp -s "$TOP/before/$f" "$dir/$f" || fail "$what: $dir/$f changed"
        else
            [ ! -e "$dir/$f" ] || fail "$what: $dir/$f was created"
        fi
    done
    [ -z "$(find "$dir" -name '*.tmp.*' 2>/dev/null)" ] || fail "$what: left $(find "$dir" -name '*.tmp.*')"
}
expect_ok "run to fill the disk after" "$GPT" train $MID --iters 2 --eval-interval 1 --eval-iters 1 --out full --quiet
expect_full "disk full while saving (resumed run)" full limited "$GPT" train --resume --out full --iters 4 --quiet
loads "disk full: the previous checkpoint" full/ckpt.bin
expect_ok "disk full: resume after it" "$GPT" train --resume --out full --iters 4 --quiet
expect_full "disk full on the first save" full_new limited "$GPT" train $MID --iters 2 --eval-interval 1 --eval-iters 1 --out full_new --quiet
rm -rf full full_new

# ---- an output path that cannot be written --------------------------------------------------
expect_ok "run to resume" "$GPT" train $TINY --iters 2 --eval-interval 1 --eval-iters 1 --out blocked --quiet
rm blocked/ckpt.bin blocked/best.bin
# Directories where the checkpoints go: even root cannot rename a file onto them.
mkdir blocked/ckpt.bin blocked/best.bin
expect_error "ckpt.bin and best.bin are directories" "Is a directory" "$GPT" train $TINY --iters 2 --out blocked --force --quiet
rm -rf blocked
if [ "$(id -u)" -ne 0 ]; then
    mkdir ro && chmod 555 ro
    expect_error "read-only run directory" "ro" "$GPT" train $TINY --iters 2 --out ro --quiet
    chmod 755 ro && rm -rf ro
else
    echo "robustness tests: running as root, so a read-only directory is writable: that case is skipped"
fi

# ---- NaN and Inf: the step and the tensor named, nothing non-finite saved -------------------
expect_ok "run to blow up" "$GPT" train $TINY --iters 6 --eval-interval 3 --eval-iters 1 --out nan --quiet
cp -r nan nan2
# Weights of 1e30 are finite, but their products are not: the gradients overflow.
"$CKPT_TOOL" scale nan/ckpt.bin nan/ckpt.bin 1e30 || fail "ckpt_tool scale failed"
expect_error "gradients overflow" "error: step 7: " "$GPT" train --resume --out nan --iters 9 --quiet
"$GPT" train --resume --out nan --iters 9 --quiet 2>&1 | grep -q "first non-finite gradient: [a-z]" ||
    fail "gradients overflow: the message does not name a tensor: $("$GPT" train --resume --out nan --iters 9 --quiet 2>&1)"
# Weights of 1e19: the loss itself is NaN.
"$CKPT_TOOL" scale nan2/ckpt.bin nan2/ckpt.bin 1e19 || fail "ckpt_tool scale failed"
expect_error "loss overflows" "the loss is" "$GPT" train --resume --out nan2 --iters 9 --quiet
for f in nan/ckpt.bin nan/best.bin nan2/ckpt.bin nan2/best.bin; do loads "after a non-finite step" $f; done
rm -rf nan nan2
# A learning rate and weight decay that blow the weights up within a few steps: however the run
# ends (finishing, or stopping at a step whose loss or evaluation is not finite: which one
# depends on the last bits of the arithmetic), what it saved loads (a checkpoint never holds NaN
# or Inf).
"$GPT" train $TINY --iters 40 --eval-interval 1 --eval-iters 1 --lr 10 --min-lr 10 --warmup 0 --weight-decay 10 \
    --out wild --quiet 2>"$TOP/wild.err"
rc=$?
checks=$((checks + 1))
[ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -Eq "^error: step [0-9]*: the (evaluation )?loss is" "$TOP/wild.err"; } ||
    fail "exploding run: status $rc: $(cat "$TOP/wild.err")"
for f in wild/ckpt.bin wild/best.bin; do [ -f $f ] && loads "exploding run" $f; done
rm -rf wild

# ---- files that cannot be read ------------------------------------------------------------
expect_ok "tiny run" "$GPT" train $TINY --iters 4 --eval-interval 2 --eval-iters 1 --out tiny --quiet
# /proc/self/mem opens, and reading it at offset 0 fails (EIO) even for root.
expect_error "train: unreadable data" "/proc/self/mem" "$GPT" train $TINY --data /proc/self/mem --out o --quiet
expect_error "info: unreadable checkpoint" "/proc/self/mem" "$GPT" info /proc/self/mem
expect_error "sample: unreadable prompt file" "/proc/self/mem" "$GPT" sample tiny/ckpt.bin --prompt-file /proc/self/mem
expect_error "tokenizer: unreadable data" "/proc/self/mem" "$GPT" tokenizer train --data /proc/self/mem --out t.tok
if [ "$(id -u)" -ne 0 ]; then
    cp small.txt locked.txt && chmod 000 locked.txt
    expect_error "train: a file without read permission" "Permission denied" "$GPT" train $TINY --data locked.txt --out o
    chmod 644 locked.txt && rm locked.txt
else
    echo "robustness tests: running as root, so chmod 000 does not stop reads: that case is skipped"
fi
# A text whose validation split is shorter than one block (its training split is long enough).
head -c 150 small.txt >short_val.txt
expect_error "train: validation split too short" "validation split of 15" "$GPT" train $TINY --data short_val.txt --out o

# ---- damaged checkpoints, through every command that reads one ----------------------------
cp tiny/ckpt.bin good.bin
size=$(wc -c <good.bin)
flip_bit() {  # flip_bit FILE OFFSET BIT
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf %03o $((b ^ (1 << $3))))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
set_byte() {  # set_byte FILE OFFSET VALUE
    printf "\\$(printf %03o "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
for i in $(seq 1 12); do
    at=$(random_below "$size")
    head -c "$at" good.bin >bad.bin
    expect_error "info: truncated to $at of $size bytes" "bad.bin" "$GPT" info bad.bin
    cp good.bin bad.bin
    at=$(random_below "$size") bit=$(random_below 8)
    flip_bit bad.bin "$at" "$bit"
    expect_error "info: bit $bit of byte $at flipped" "bad.bin" "$GPT" info bad.bin
done
mkdir -p res
head -c $((size / 2)) good.bin >res/ckpt.bin
expect_error "train --resume: truncated" "cannot resume" "$GPT" train --resume --out res
cp good.bin res/ckpt.bin && flip_bit res/ckpt.bin $((size / 3)) 5
expect_error "train --resume: a flipped bit" "checksum" "$GPT" train --resume --out res
expect_error "sample: a flipped bit" "checksum" "$GPT" sample res/ckpt.bin
expect_error "attention: a flipped bit" "checksum" "$GPT" attention res/ckpt.bin --prompt ab --out a.html
rm -rf res
cp good.bin bad.bin && set_byte bad.bin 8 4  # the version, checked before the checksum
expect_error "info: a newer version" "version 4" "$GPT" info bad.bin
expect_error "sample: a newer version" "version 4" "$GPT" sample bad.bin
cp good.bin bad.bin && set_byte bad.bin 0 103  # 'g' for 'G'
expect_error "info: wrong magic" "bad magic" "$GPT" info bad.bin
# The tokenizer section (at byte 48: after the 12-byte header and CONF) with a valid CRC: its
# image's version, the section's first field, becomes 7.
cp good.bin bad.bin && set_byte bad.bin 60 7 && "$CKPT_TOOL" recrc bad.bin
expect_error "info: corrupt tokenizer" "tokenizer is corrupt" "$GPT" info bad.bin
expect_error "sample: corrupt tokenizer" "tokenizer is corrupt" "$GPT" sample bad.bin
rm -f bad.bin

# ---- a prompt longer than block_size: cut to its last block_size tokens (documented) -------
# tiny has block_size 16 and a char tokenizer, so 16 tokens are 16 bytes.
long="First Citizen: Before we proceed any further, hear me speak."
last16=$(printf %s "$long" | tail -c 16)
expect_ok "sample: long prompt" "$GPT" sample tiny/ckpt.bin --prompt "$long" --tokens 30 --seed 5 --temperature 1
cp "$TOP/ok.out" long.txt
expect_ok "sample: its last block" "$GPT" sample tiny/ckpt.bin --prompt "$last16" --tokens 30 --seed 5 --temperature 1
checks=$((checks + 1))
head -c ${#long} long.txt | grep -qF "$long" || fail "sample: the long prompt is not printed whole first"
[ "$(tail -c +$((${#long} + 1)) long.txt)" = "$(tail -c +17 "$TOP/ok.out")" ] ||
    fail "sample: a long prompt is not continued as its last block_size tokens are"
expect_ok "attention: long prompt" "$GPT" attention tiny/ckpt.bin --prompt "$long" --out attn.html
grep -q "showing the last 16" "$TOP/ok.err" || fail "attention: no warning that the prompt was cut: $(cat "$TOP/ok.err")"
rm -f long.txt attn.html

finish
