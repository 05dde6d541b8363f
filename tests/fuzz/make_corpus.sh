#!/bin/sh
# Regenerates the committed seed corpora of the fuzz targets in tests/fuzz/corpus/. Not run by
# any build: the corpora are committed, and this records how they were made.
#
#   GPT=build/<config>/gpt CKPT_TOOL=build/<config>/ckpt_tool sh tests/fuzz/make_corpus.sh
#
# (make test builds both.) Seeds are small valid inputs of every kind the parsers know, so
# the fuzzer starts from deep inside the formats rather than from random bytes.
set -eu
GPT=${GPT:-./gpt}
CKPT_TOOL=${CKPT_TOOL:?set CKPT_TOOL to the ckpt_tool built by make test}
case "$GPT" in /*) ;; *) GPT="$PWD/$GPT" ;; esac
case "$CKPT_TOOL" in /*) ;; *) CKPT_TOOL="$PWD/$CKPT_TOOL" ;; esac
ROOT=$PWD
OUT=$ROOT/tests/fuzz/corpus
TMP=$(mktemp -d /tmp/gpt_corpus.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

rm -rf "$OUT"
mkdir -p "$OUT/fuzz_checkpoint" "$OUT/fuzz_tokenizer_load" "$OUT/fuzz_tokenizer_roundtrip"

# ---- texts ---------------------------------------------------------------------------------
head -c 3000 "$ROOT/data/tinyshakespeare.txt" >shakespeare.txt
# UTF-8 from one to four bytes, then bytes that are not UTF-8 (a stray continuation, an
# overlong form, a surrogate, a lone lead byte, 0xFF) and a NUL.
printf 'caf\303\251 na\303\257ve \316\273 \342\202\254 \360\237\230\200 \344\270\255\346\226\207\n' >utf8.txt
printf 'bad: \200 \300\257 \355\240\200 \342\202 \377 nul:\000 end\n' >bytes.txt
# What the BPE pre-split treats specially: contractions, runs of spaces, digits, symbols.
printf "they'll say it's 1234 o'clock  -- we're   here,\t\tyou've 'd 'm\n\n  x  \n" >split.txt

# ---- tokenizer images (a tokenizer file less its 8-byte magic and 4-byte CRC) ----------------
image() {  # image NAME ARGS... : trains a tokenizer, keeps its image
    name=$1
    shift
    "$GPT" tokenizer train --out "$name.tok" "$@" >/dev/null 2>&1
    size=$(wc -c <"$name.tok")
    tail -c +9 "$name.tok" | head -c $((size - 12)) >"$OUT/fuzz_tokenizer_load/$name"
}
cat utf8.txt bytes.txt >mixed.txt
image char_shakespeare --data shakespeare.txt
image char_mixed --data mixed.txt
image bpe_shakespeare --data shakespeare.txt --tokenizer bpe --vocab-size 300
image bpe_mixed --data mixed.txt --tokenizer bpe --vocab-size 280
image bpe_256 --data split.txt --tokenizer bpe --vocab-size 256

# ---- checkpoints (one control byte first: 1 = fix the CRC, see fuzz_checkpoint.c) -----------
TINY="--n-layer 1 --n-head 2 --n-embd 8 --block-size 8 --batch-size 2 --iters 2 --eval-interval 1 --eval-iters 1
      --sample-interval 0 --quiet"
seed() {  # seed NAME CONTROL FILE
    { printf "\\$2"; cat "$3"; } >"$OUT/fuzz_checkpoint/$1"
}
"$GPT" train --data shakespeare.txt --out char $TINY
seed char_train 001 char/ckpt.bin
seed char_train_nofix 000 char/ckpt.bin
"$CKPT_TOOL" strip char/ckpt.bin char_weights.bin
seed char_weights 001 char_weights.bin
cat shakespeare.txt mixed.txt >both.txt
"$GPT" train --data both.txt --out bpe --tokenizer bpe --vocab-size 260 $TINY
"$CKPT_TOOL" strip bpe/ckpt.bin bpe_weights.bin
seed bpe_weights 001 bpe_weights.bin

# ---- round-trip inputs: byte 0 the bpe vocabulary (256 + b % 45), byte 1 the split ---------
rt() {  # rt NAME VOCAB SPLIT FILE
    { printf "\\$2\\$3"; cat "$4"; } >"$OUT/fuzz_tokenizer_roundtrip/$1"
}
head -c 2000 shakespeare.txt >sh2k.txt
rt shakespeare 054 200 sh2k.txt
rt utf8 020 100 utf8.txt
rt bytes 040 140 bytes.txt
rt split 054 300 split.txt
cat split.txt utf8.txt split.txt bytes.txt >all.txt
rt all 010 377 all.txt

du -sh "$OUT"
