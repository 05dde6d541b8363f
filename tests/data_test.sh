#!/bin/sh
# Data tests: what a person sees of the data path. Run by `make test` with GPT, the binary, and
# CKPT_TOOL, the helper of tests/tools/ckpt_tool.c.
#
# - hostile --data (a FIFO, /dev/zero, binary files, a file growing while it is read): one
#   error line, nothing created;
# - a resumed run whose text changed: refused; whose text did not: its ids are read from
#   tokens.bin, not encoded again (and a damaged tokens.bin is rewritten);
# - --init-from: the checkpoint's weights and tokenizer, conflicting flags named with both
#   values, characters the vocabulary lacks named with their positions;
# - one writer per run directory: a second train (plain, --force, --resume, --init-from) on a
#   live run is refused naming its pid; after kill -9 the next run goes ahead.
set -u
GPT=${GPT:-./gpt}
CKPT_TOOL=${CKPT_TOOL:?set CKPT_TOOL to the ckpt_tool that make test builds}
case "$GPT" in /*) ;; *) GPT="$PWD/$GPT" ;; esac
case "$CKPT_TOOL" in /*) ;; *) CKPT_TOOL="$PWD/$CKPT_TOOL" ;; esac
DATA="$PWD/data/tinyshakespeare.txt"
TEST_NAME="data tests"
. "$(dirname "$0")/lib.sh"
TOP=$(mktemp -d /tmp/gpt_data_test.XXXXXX)
BG=  # a process in the background, if any
cleanup() {
    if [ -n "$BG" ]; then kill -9 "$BG" 2>/dev/null; fi
    rm -rf "$TOP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
WORK="$TOP/work"
mkdir "$WORK" && cd "$WORK" || exit 1

wait_until() {  # wait_until SECONDS CMD... : polls CMD every 50 ms
    tries=$(($1 * 20))
    shift
    while [ "$tries" -gt 0 ]; do
        if "$@"; then return 0; fi
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}
digest_field() { "$CKPT_TOOL" digest "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
has() {  # has WHAT FILE TEXT : FILE contains TEXT
    checks=$((checks + 1))
    grep -qF -- "$3" "$2" || fail "$1: '$3' not in: $(cat "$2")"
}

head -c 60000 "$DATA" >small.txt
TINY="--n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 4 --sample-interval 0 --threads 1"

# ---- hostile --data: one line, nothing left behind ----------------------------------------
mkfifo fifo
expect_error "a FIFO" "'fifo' is a FIFO, not a regular file" "$GPT" train --data fifo --out o $TINY
expect_error "/dev/zero" "'/dev/zero' is a character device, not a regular file" "$GPT" train --data /dev/zero --out o $TINY
expect_error "a directory" "is a directory" "$GPT" train --data . --out o $TINY
rm fifo
head -c 20000 "$GPT" >program.bin
expect_error "an executable" "'program.bin' looks binary, not like text: it holds a NUL byte (0x00) at byte" \
    "$GPT" train --data program.bin --out o $TINY
printf '\377\376h\000i\000' >utf16.txt
expect_error "UTF-16 text" "UTF-16 byte-order mark: convert it with iconv -f UTF-16 -t UTF-8" \
    "$GPT" train --data utf16.txt --out o $TINY
head -c 30000 /dev/urandom | tr -d '\000' >random.bin
expect_error "random bytes" "are not valid UTF-8" "$GPT" train --data random.bin --out o $TINY
expect_error "random bytes, bpe" "are not valid UTF-8" "$GPT" train --data random.bin --out o $TINY --tokenizer bpe
rm -f program.bin utf16.txt random.bin
# A few bytes that are not UTF-8 (Latin-1 accents here) are still text: byte-fallback tokens.
{ cat small.txt; printf 'caf\351, \351t\351\n'; } >latin1.txt
expect_ok "Latin-1 accents in a text" "$GPT" train --data latin1.txt --out latin1 --iters 2 --eval-iters 1 $TINY --quiet
rm -rf latin1 latin1.txt

# A file growing while it is read (outside the working directory, whose files expect_error
# watches): something appends to it every millisecond, from before gpt opens it to after.
yes "$(head -c 200 small.txt | tr '\n' ' ')" | head -c 40000000 >"$TOP/grow.txt"
(while :; do echo more; sleep 0.001; done) >>"$TOP/grow.txt" &
BG=$!
size0=$(wc -c <"$TOP/grow.txt")
wait_until 10 test "$(wc -c <"$TOP/grow.txt")" -gt "$size0"
expect_error "a file growing while read" "changed while it was being read" "$GPT" train --data "$TOP/grow.txt" --out o $TINY
kill -9 $BG 2>/dev/null
wait $BG 2>/dev/null
BG=
rm -f "$TOP/grow.txt"
# A text too short in bpe tokens is known only once encoded, after its new run directory was
# made: the directory goes again.
awk 'BEGIN { for (i = 0; i < 200; i++) printf "abab" }' >repeat.txt
expect_error "too short once encoded (bpe)" "'repeat.txt' is too short" \
    "$GPT" train --data repeat.txt --out new/run --tokenizer bpe --vocab-size 300 $TINY --quiet
rm -f repeat.txt

# ---- resume: the same text, its ids read back; a changed text refused --------------------
expect_ok "a run" "$GPT" train --data small.txt --out run --iters 4 --eval-interval 2 --eval-iters 1 $TINY
has "first run: ids encoded into run/tokens.bin" "$TOP/ok.err" "token ids: 2 bytes each, written to run/tokens.bin"
checks=$((checks + 1))
[ "$(wc -c <run/tokens.bin)" -eq $((64 + 2 * 60000)) ] || fail "tokens.bin is $(wc -c <run/tokens.bin) bytes, expected 64 + 2 x 60000"
expect_ok "resume" "$GPT" train --resume --out run --iters 6
has "resume: ids read back" "$TOP/ok.err" "token ids: 2 bytes each, read from run/tokens.bin"
printf '\377' | dd of=run/tokens.bin bs=1 seek=1000 conv=notrunc 2>/dev/null
expect_ok "resume with a damaged tokens.bin" "$GPT" train --resume --out run --iters 8
has "damaged tokens.bin: warned" "$TOP/ok.err" "warning: 'run/tokens.bin' is damaged (its ids do not match their checksum); encoding the text again"
has "damaged tokens.bin: rewritten" "$TOP/ok.err" "token ids: 2 bytes each, written to run/tokens.bin"
cp small.txt small.orig
printf 'X' | dd of=small.txt bs=1 seek=30000 conv=notrunc 2>/dev/null
expect_error "resume, a byte of the text changed" "'small.txt' has changed since the checkpoint was written (the same 60000 bytes, but CRC-32C" \
    "$GPT" train --resume --out run --iters 10
cp small.orig small.txt && printf 'x' >>small.txt
expect_error "resume, the text grew" "'small.txt' has changed since the checkpoint was written (60001 bytes now, 60000 then)" \
    "$GPT" train --resume --out run --iters 10
mv small.orig small.txt

# ---- --init-from --------------------------------------------------------------------------
expect_error "init-from: another n_embd" "--n-embd 32 conflicts with --init-from 'run/ckpt.bin', whose n_embd is 16" \
    "$GPT" train --init-from run/ckpt.bin --data small.txt --out ft --n-embd 32
expect_error "init-from: another tokenizer" "--tokenizer bpe conflicts with --init-from 'run/ckpt.bin', whose tokenizer is char of" \
    "$GPT" train --init-from run/ckpt.bin --data small.txt --out ft --tokenizer bpe
expect_error "init-from and resume" "--resume and --init-from contradict each other" \
    "$GPT" train --init-from run/ckpt.bin --resume --out run
expect_error "init-from: a missing checkpoint" "--init-from: cannot open 'nope.bin'" \
    "$GPT" train --init-from nope.bin --data small.txt --out ft
expect_error "init-from into a run directory" "already holds a training run" \
    "$GPT" train --init-from run/ckpt.bin --data small.txt --out run
# Characters small.txt never had: Z (twice), 3, &, é.
{ head -c 2000 small.txt; printf 'Zounds, 3 men & a Zebra\ncaf\303\251\n'; cat small.txt; } >new.txt
expect_error "init-from: characters the vocabulary lacks" \
    "'new.txt' holds 5 characters that the char vocabulary of the checkpoint 'run/ckpt.bin' (59 tokens) cannot encode, 4 distinct; 'Z' (U+005A) at byte 2000 (line" \
    "$GPT" train --init-from run/ckpt.bin --data new.txt --out ft
"$GPT" train --init-from run/ckpt.bin --data new.txt --out ft >/dev/null 2>"$TOP/unknown.err"
has "init-from: every unknown character named" "$TOP/unknown.err" \
    "'3' (U+0033) at byte 2008 (line 77), '&' (U+0026) at byte 2014 (line 77), '$(printf '\303\251')' (U+00E9) at byte 2027 (line 78) (that vocabulary is fixed"
rm -f new.txt
# The new run starts from the checkpoint's weights, exactly, with a fresh optimizer at step 0.
expect_ok "init-from, no steps" "$GPT" train --init-from run/ckpt.bin --data small.txt --out ft0 --iters 0 --eval-iters 0 --block-size 16
checks=$((checks + 1))
[ "$(digest_field ft0/ckpt.bin crc)" = "$(digest_field run/ckpt.bin crc)" ] || fail "init-from: the weights are not the checkpoint's"
[ "$(digest_field ft0/ckpt.bin step)" = 0 ] || fail "init-from: the new run is not at step 0: $("$CKPT_TOOL" digest ft0/ckpt.bin)"
# From a weights-only checkpoint too; a few steps on the new text, in a new directory.
"$CKPT_TOOL" strip run/ckpt.bin weights.bin || fail "ckpt_tool strip failed"
head -c 30000 small.txt >sub.txt
expect_ok "init-from a weights-only checkpoint" "$GPT" train --init-from weights.bin --data sub.txt --out ft --iters 4 --eval-interval 2 --eval-iters 1
has "init-from: the banner says so" "$TOP/ok.err" "starting from the weights of weights.bin, with a new optimizer state and schedule"
checks=$((checks + 1))
[ "$(digest_field ft/ckpt.bin step)" = 4 ] || fail "init-from: expected step 4: $("$CKPT_TOOL" digest ft/ckpt.bin)"
expect_ok "init-from run resumes" "$GPT" train --resume --out ft --iters 6 --quiet
rm -rf ft ft0 weights.bin sub.txt

# ---- one writer per run directory ---------------------------------------------------------
# The live run writes outside the working directory, whose files expect_error watches.
LIVE="$TOP/live"
"$GPT" train --data small.txt --out "$LIVE" $TINY --iters 1000000 --eval-interval 1 --eval-iters 1 --quiet 2>"$TOP/live.err" &
BG=$!
wait_until 60 test -f "$LIVE/ckpt.bin" || fail "the live run never saved: $(cat "$TOP/live.err")"
# (A timeout: were the lock broken, these would train beside the live run, for ever.)
expect_error "a second run on a live one" "'$LIVE' is in use: another gpt train (pid $BG)" \
    timeout 60 "$GPT" train --data small.txt --out "$LIVE" $TINY
expect_error "--force on a live run" "(pid $BG)" timeout 60 "$GPT" train --data small.txt --out "$LIVE" $TINY --force
expect_error "--resume on a live run" "(pid $BG)" timeout 60 "$GPT" train --resume --out "$LIVE"
expect_error "--init-from into a live run" "(pid $BG)" \
    timeout 60 "$GPT" train --init-from run/ckpt.bin --data small.txt --out "$LIVE" --force
checks=$((checks + 1))
[ "$(cat "$LIVE/lock" | cut -d' ' -f1)" = "$BG" ] || fail "the lock file does not name the live run: $(cat "$LIVE/lock")"
kill -9 $BG
wait $BG 2>/dev/null
BG=
checks=$((checks + 1))
[ -f "$LIVE/lock" ] || fail "kill -9 should leave the lock file (the lock itself goes with the process)"
step=$(digest_field "$LIVE/ckpt.bin" step)
expect_ok "resume after kill -9" "$GPT" train --resume --out "$LIVE" --iters $((step + 2)) --quiet
checks=$((checks + 1))
[ ! -e "$LIVE/lock" ] || fail "the lock file outlived the run that ended normally"
expect_ok "--force after it" "$GPT" train --data small.txt --out "$LIVE" $TINY --iters 2 --eval-iters 1 --force --quiet
rm -rf "$LIVE" run

finish
