#!/bin/sh
# Command-line tests: what a person sees. Run by `make test` with GPT set to the binary.
#
# Every bad input must give exactly one line on stderr starting with "error:", naming the
# problem, a non-zero exit, nothing on stdout, and no file created or damaged.
set -u
GPT=${GPT:-./gpt}
case "$GPT" in /*) ;; *) GPT="$PWD/$GPT" ;; esac
REPO=$PWD
DATA="$REPO/data/tinyshakespeare.txt"
TOP=$(mktemp -d /tmp/gpt_cli_test.XXXXXX)
trap 'rm -rf "$TOP"' EXIT
WORK="$TOP/work"
mkdir "$WORK" && cd "$WORK" || exit 1
TEST_NAME="cli tests"
. "$REPO/tests/lib.sh"

# ---- a tiny corpus and a tiny trained run -----------------------------------------------
head -c 60000 "$DATA" >small.txt
printf 'too short' >short.txt
: >empty.txt
mkdir adir
TINY="--n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 4 --eval-iters 2 --sample-interval 0 --quiet"
expect_ok "tiny training run" "$GPT" train --data small.txt --out run --iters 20 --eval-interval 10 $TINY
for f in ckpt.bin best.bin metrics.csv loss.svg samples.txt; do
    [ -f "run/$f" ] || fail "training did not write run/$f"
done
cp run/ckpt.bin good.bin
# The banner: each of its lines once.
expect_ok "train banner" "$GPT" train --data small.txt --out run_banner --iters 2 --eval-interval 2 ${TINY% --quiet}
for line in data model training; do
    [ "$(grep -c "^$line: " "$TOP/ok.err")" -eq 1 ] || fail "train banner: not one '$line:' line: $(cat "$TOP/ok.err")"
done

# ---- the command itself ------------------------------------------------------------------
expect_error "unknown command" "unknown command 'fly'" "$GPT" fly

# ---- train: files --------------------------------------------------------------------------
expect_error "train: missing file" "nonexistent.txt" "$GPT" train --data nonexistent.txt --out o1 $TINY
expect_error "train: a directory" "is a directory" "$GPT" train --data adir --out o1 $TINY
expect_error "train: empty file" "is empty" "$GPT" train --data empty.txt --out o1 $TINY
expect_error "train: text too short" "too short" "$GPT" train --data short.txt --out o1 $TINY
expect_error "train: out is a file" "Not a directory" "$GPT" train --data small.txt --out small.txt/x $TINY
expect_error "train: existing run" "already holds a training run" "$GPT" train --data small.txt --out run $TINY
# ---- train: flags --------------------------------------------------------------------------
expect_error "train: unknown flag" "unknown option '--bogus'" "$GPT" train --bogus
expect_error "train: flag without value" "needs a value" "$GPT" train --data small.txt --lr
expect_error "train: lr not a number" "--lr expects a number" "$GPT" train --lr abc
expect_error "train: batch size 1e99" "--batch-size expects a whole number" "$GPT" train --batch-size 1e99
expect_error "train: n-head 0" "--n-head expects a whole number from 1" "$GPT" train --n-head 0
expect_error "train: iters -5" "--iters expects a whole number from 0" "$GPT" train --iters -5
expect_error "train: too large" "--n-layer expects a whole number from 1 to 1024" "$GPT" train --n-layer 5000
expect_error "train: D % H" "--n-head 5 does not divide --n-embd 128" "$GPT" train --n-head 5 --data small.txt --out o1
expect_error "train: extra argument" "unexpected argument 'foo'" "$GPT" train foo
expect_error "train: resume nothing" "cannot resume" "$GPT" train --resume --out nowhere
expect_error "train: resume with another model" "--n-layer 3 differs" "$GPT" train --resume --out run --n-layer 3
expect_error "train: resume with another optimizer" "--optimizer muon differs" "$GPT" train --resume --out run --optimizer muon
expect_error "train: unknown optimizer" "--optimizer expects adamw or muon, got 'sgd'" "$GPT" train --optimizer sgd
expect_error "train: muon momentum 1" "--muon-momentum expects a number from 0 to 0.999999" "$GPT" train --muon-momentum 1
expect_error "train: vocab-size for char" "--vocab-size applies to --tokenizer bpe" "$GPT" train --vocab-size 300
expect_error "train: min-lr above lr" "--min-lr" "$GPT" train --lr 1e-4 --min-lr 1e-3

# ---- train: the model's features -----------------------------------------------------------
expect_error "train: bad activation" "--activation expects gelu or relu2, got 'tanh'" "$GPT" train --activation tanh
expect_ok "train with the features" "$GPT" train --data small.txt --out feat --iters 4 --eval-interval 0 \
    --activation relu2 --untied-head --zero-init-proj $TINY
expect_ok "info of a featured model" "$GPT" info feat/ckpt.bin
grep -q "^features:        relu2 untied-head$" "$TOP/ok.out" || fail "info: features not shown: $(cat "$TOP/ok.out")"
grep -q "^lm_head  *65x16 \|^lm_head  *[0-9]*x16 " "$TOP/ok.out" || fail "info: no lm_head row"
grep -q "^  zero_init_proj  1$" "$TOP/ok.out" || fail "info: zero_init_proj not in the settings"
expect_ok "info of a plain model" "$GPT" info good.bin
grep -q "^features:        none$" "$TOP/ok.out" || fail "info: a plain model's features not 'none'"
grep -q "lm_head" "$TOP/ok.out" && fail "info: a tied model shows lm_head"
expect_error "train: resume without a feature" "--activation gelu differs from the run being resumed" \
    "$GPT" train --resume --out feat --activation gelu
expect_error "train: resume adding a feature" "--untied-head differs from the run being resumed" \
    "$GPT" train --resume --out run --untied-head
expect_error "train: resume with --zero-init-proj" "--zero-init-proj sets how a new model's weights start" \
    "$GPT" train --resume --out feat --zero-init-proj
expect_ok "train: resume keeps the features" "$GPT" train --resume --out feat --iters 6 --quiet
expect_ok "info after resuming" "$GPT" info feat/ckpt.bin
grep -q "^features:        relu2 untied-head$" "$TOP/ok.out" || fail "resume lost the features"
expect_error "train: init-from with another activation" "--activation gelu conflicts with --init-from 'feat/ckpt.bin', whose model has relu2" \
    "$GPT" train --init-from feat/ckpt.bin --data small.txt --out ft1 --activation gelu
expect_error "train: init-from adding a feature" "--untied-head conflicts with --init-from 'good.bin', whose model does not have untied-head" \
    "$GPT" train --init-from good.bin --data small.txt --out ft2 --untied-head
expect_error "train: init-from with --zero-init-proj" "--init-from takes its weights from a checkpoint" \
    "$GPT" train --init-from good.bin --data small.txt --out ft3 --zero-init-proj
expect_ok "train: init-from takes the features" "$GPT" train --init-from feat/ckpt.bin --data small.txt --out ft4 \
    --iters 2 --eval-interval 0 --eval-iters 2 --sample-interval 0 --batch-size 4 --quiet
expect_ok "info of the fine-tuned model" "$GPT" info ft4/ckpt.bin
grep -q "^features:        relu2 untied-head$" "$TOP/ok.out" || fail "init-from lost the features"
expect_ok "sample from a featured model" "$GPT" sample feat/ckpt.bin --tokens 20 --seed 3
expect_error "export: relu2 to gguf" "GGUF's gpt2 architecture cannot express the model's relu2" \
    "$GPT" export feat/ckpt.bin --format gguf --out feat.gguf
[ -e feat.gguf ] && fail "export: a refused model left feat.gguf"
expect_ok "gradcheck with the features" "$GPT" gradcheck --activation relu2 --untied-head --kernels textbook

# ---- info -----------------------------------------------------------------------------------
expect_ok "info" "$GPT" info good.bin
grep -q "h.0.w_q" "$TOP/ok.out" || fail "info: no parameter table"
grep -q "16x16" "$TOP/ok.out" || fail "info: W_Q not shown as CxC"
expect_error "info: missing checkpoint" "missing.bin" "$GPT" info missing.bin
expect_error "info: no argument" "info" "$GPT" info
: >empty.bin
expect_error "info: empty checkpoint" "is empty" "$GPT" info empty.bin
head -c 1000 good.bin >trunc.bin
expect_error "info: truncated checkpoint" "corrupt" "$GPT" info trunc.bin
cp good.bin flipped.bin
printf '\377' | dd of=flipped.bin bs=1 seek=3000 conv=notrunc 2>/dev/null
expect_error "info: flipped byte" "checksum" "$GPT" info flipped.bin
expect_error "info: not a checkpoint" "bad magic" "$GPT" info small.txt
rm -f empty.bin trunc.bin flipped.bin

# ---- the tokenizer inside a checkpoint ------------------------------------------------------
printf 'First' >word.txt
expect_ok "tokenizer encode from a checkpoint" "$GPT" tokenizer encode --tokenizer-file good.bin --input word.txt
[ "$(cat "$TOP/ok.out")" = "15 41 50 51 52" ] || fail "tokenizer encode from a checkpoint: got '$(cat "$TOP/ok.out")'"
rm -f word.txt

# ---- eval ---------------------------------------------------------------------------------
expect_ok "eval" "$GPT" eval good.bin --data small.txt --split val
head -n 1 "$TOP/ok.out" | grep -Eq '^loss [0-9]+\.[0-9]+  perplexity [0-9]+\.[0-9]+  bits/byte [0-9]+\.[0-9]+  \(5999 tokens\)$' ||
    fail "eval: first line is not 'loss L  perplexity P  bits/byte B  (5999 tokens)': $(head -n 1 "$TOP/ok.out")"
# Char tokens are one byte each here: perplexity = exp(loss), bits/byte = loss / ln 2.
awk '{ if (($4 - exp($2)) ^ 2 > 1e-4 * $4 ^ 2 || ($6 - $2 / log(2)) ^ 2 > 1e-6) exit 1 }' "$TOP/ok.out" ||
    fail "eval: perplexity or bits/byte do not follow from the loss: $(head -n 1 "$TOP/ok.out")"
cp "$TOP/ok.out" eval1.txt
expect_ok "eval, 2 threads, batch 3" "$GPT" eval good.bin --data small.txt --split val --threads 2 --batch-size 3
cmp -s eval1.txt "$TOP/ok.out" || fail "eval: 1 and 2 threads or another batch size give another loss"
expect_ok "eval, the whole file" "$GPT" eval good.bin --data small.txt
grep -q '(59999 tokens)' "$TOP/ok.out" || fail "eval --split all: not every token after the first predicted"
expect_error "eval: missing checkpoint" "nonexistent.bin" "$GPT" eval nonexistent.bin --data small.txt
expect_error "eval: missing data" "nonexistent.txt" "$GPT" eval good.bin --data nonexistent.txt
expect_error "eval: no --data" "--data FILE is required" "$GPT" eval good.bin
expect_error "eval: bad split" "--split expects all or val, got 'test'" "$GPT" eval good.bin --data small.txt --split test
printf 'abc\342\202\254 def\n' >euro.txt
expect_error "eval: text the tokenizer cannot encode" "cannot encode" "$GPT" eval good.bin --data euro.txt

# ---- train --time-budget ----------------------------------------------------------------------
# The budget, not --iters, ends the run; the cosine reaches min_lr (1e-4) as the time runs out.
expect_ok "train --time-budget 3s" "$GPT" train --data small.txt --out run_tb3 --time-budget 3s --warmup 5 \
    --eval-interval 0 $TINY
# metrics.csv: step,batch_loss,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s
awk -F, 'NR > 1 { last = $0; lr = $5; el = $8; n++ } END {
    if (n < 6 || el < 3 || el > 8 || lr < 1e-4 * 0.999 || lr > 1e-4 + 0.05 * 9e-4) { print last; exit 1 } }' \
    run_tb3/metrics.csv || fail "train --time-budget 3s: did not end near 3 s at min_lr: $(tail -n 1 run_tb3/metrics.csv)"
# Evaluations count against the budget, the final one too: the run keeps back as long as the
# evaluation before took, so it ends within the budget rather than an evaluation past it. The
# budget is six evaluations of this build (sanitizer builds are ten times slower), at least 3 s.
# In metrics.csv an evaluation shares its step's row (elapsed: the step's end), so d, an
# evaluation's length, is the next row's elapsed less its row's. The last step must end
# before the budget (without the reserve it starts after it), but not three evaluations early.
t0=$(date +%s.%N)
expect_ok "train, one slow evaluation" "$GPT" train --data small.txt --out run_tbe_cal --iters 1 --eval-interval 0 \
    $TINY --eval-iters 2000 --threads 1
budget=$(echo "$t0 $(date +%s.%N)" | awk '{ b = 6 * ($2 - $1); printf "%.2f", b < 3 ? 3 : b }')
expect_ok "train --time-budget ${budget}s, slow evaluations" "$GPT" train --data small.txt --out run_tbe \
    --time-budget "$budget" --warmup 5 --eval-interval 10 $TINY --eval-iters 2000 --threads 1
awk -F, -v b="$budget" 'NR > 1 { if (ev) d = $8 - el; el = $8; ev = $4 != ""; n += ev }
    END { exit !(n >= 3 && el < b && el + 3 * d > b) }' run_tbe/metrics.csv ||
    fail "train --time-budget ${budget}s: the final evaluation ended past the budget: $(tail -n 2 run_tbe/metrics.csv)"
# Stopped early (as by Ctrl-C), a budgeted run resumes with what is left of the budget.
expect_ok "train --time-budget, stopped" "$GPT" train --data small.txt --out run_tbr --time-budget 3 --warmup 5 \
    --stop-after 5 $TINY
# The time already spent counts: a budget it exceeds ends the resumed run before any step.
cp -r run_tbr run_tbr_spent
cp -r run_tbr run_tbr_kept
expect_ok "resume past the budget" "$GPT" train --resume --out run_tbr_spent --time-budget 0.001 --quiet
[ "$(tail -n 1 run_tbr_spent/metrics.csv | cut -d, -f1)" = 5 ] ||
    fail "resume past the budget: trained on: $(tail -n 1 run_tbr_spent/metrics.csv)"
# (Near 3 s: its last step ends a little before, keeping back the final evaluation's time.)
expect_ok "resume a time-budgeted run" "$GPT" train --resume --out run_tbr --time-budget 3 --quiet
awk -F, 'NR > 1 { el = $8; lr = $5 } END { exit !(el >= 2.5 && el < 8 && lr < 1.5e-4) }' run_tbr/metrics.csv ||
    fail "resumed --time-budget run: did not end near 3 s of training at min_lr: $(tail -n 1 run_tbr/metrics.csv)"
# The checkpoint keeps the budget: a resume without --time-budget trains for what is left of it.
expect_ok "resume a time-budgeted run, its budget from the checkpoint" "$GPT" train --resume --out run_tbr_kept --quiet
awk -F, 'NR > 1 { el = $8; lr = $5 } END { exit !(el >= 2.5 && el < 8 && lr < 1.5e-4) }' run_tbr_kept/metrics.csv ||
    fail "resume without --time-budget: did not end near 3 s of training at min_lr: $(tail -n 1 run_tbr_kept/metrics.csv)"
for bad in 10x 1m1h 0 -5 1h30 5s5s; do
    expect_error "--time-budget $bad" "--time-budget expects a duration above zero such as 90s, 10m, 1h30m or plain seconds, got '$bad'" \
        "$GPT" train --data small.txt --out run_bad_budget --time-budget "$bad" $TINY
done
[ -e run_bad_budget ] && fail "a malformed --time-budget created the run directory"

# ---- sample -------------------------------------------------------------------------------
expect_ok "sample" "$GPT" sample good.bin --tokens 40 --seed 7
[ "$(wc -c <"$TOP/ok.out")" -ge 40 ] || fail "sample: fewer than 40 bytes of text"
grep -q "tokens/s" "$TOP/ok.err" || fail "sample: no summary on stderr"
cp "$TOP/ok.out" sample1.txt
expect_ok "sample, 2 threads" "$GPT" sample good.bin --tokens 40 --seed 7 --threads 2
cmp -s sample1.txt "$TOP/ok.out" || fail "sample: 1 and 2 threads give different text for one seed"
expect_ok "sample with prompt" "$GPT" sample good.bin --prompt "ROMEO:" --tokens 20 --temperature 0
head -c 6 "$TOP/ok.out" | grep -q "ROMEO:" || fail "sample: prompt not printed first"
rm -f sample1.txt
expect_error "sample: missing checkpoint" "missing.bin" "$GPT" sample missing.bin
expect_error "sample: unknown character" "character '%' (U+0025) at byte 2" "$GPT" sample good.bin --prompt 'ab%'
expect_error "sample: top-p 0" "--top-p" "$GPT" sample good.bin --top-p 0
expect_error "sample: top-p above 1" "--top-p" "$GPT" sample good.bin --top-p 1.5
expect_error "sample: negative temperature" "--temperature" "$GPT" sample good.bin --temperature -1
expect_error "sample: zero tokens" "--tokens" "$GPT" sample good.bin --tokens 0
expect_error "sample: two prompts" "prompt" "$GPT" sample good.bin --prompt a --prompt-file small.txt
head -c 2000 good.bin >trunc.bin
expect_error "sample: truncated checkpoint" "corrupt" "$GPT" sample trunc.bin
rm -f trunc.bin

# ---- attention ----------------------------------------------------------------------------
expect_ok "attention page" "$GPT" attention good.bin --prompt "First Citizen:" --out attn.html
grep -q "</html>" attn.html || fail "attention: page not complete"
grep -qi "<script" attn.html && fail "attention: page has a script"
rm -f attn.html
expect_error "attention: no --out" "--out" "$GPT" attention good.bin --prompt "abc"
expect_error "attention: layer out of range" "--layer" "$GPT" attention good.bin --prompt "abc" --out a.html --layer 9

# ---- plot -----------------------------------------------------------------------------------
# run evaluated at steps 0, 10 and 20; torch.csv is what scripts/torch_curve.py writes.
printf 'elapsed_s,val_loss\n1.5,4.1\n30,2.9\n60,2.6\n' >torch.csv
expect_ok "plot" "$GPT" plot --out curve.svg --title "a & b" --hline 2.7=goal --ymax 5 ours=run torch=torch.csv
grep -q "^ours: 3 evaluations; last val" "$TOP/ok.out" || fail "plot: no summary of run: $(cat "$TOP/ok.out")"
grep -q "^torch: 3 evaluations; last val 2.6000 at 1.00 min; best 2.6000 at 1.00 min$" "$TOP/ok.out" ||
    fail "plot: wrong summary of torch.csv: $(cat "$TOP/ok.out")"
[ "$(grep -c '<polyline' curve.svg)" = 2 ] || fail "plot: not one line per series"
grep -q '>a &amp; b</text>' curve.svg && grep -q '>2.7 goal</text>' curve.svg && grep -q '>torch</text>' curve.svg ||
    fail "plot: title, reference line or legend missing"
tail -n 1 curve.svg | grep -q '^</svg>$' || fail "plot: the SVG is not complete"
printf 'elapsed_s,val_loss\n1.5,4.1\n30,oops\n' >bad.csv
printf 'elapsed_s,val_loss\n' >noval.csv
printf 'elapsed,loss\n1,2\n' >header.csv
# Each leaves curve.svg as it was (expect_error compares every file).
expect_error "plot: missing run" "nowhere" "$GPT" plot --out curve.svg a=nowhere
expect_error "plot: a directory without a run" "holds no metrics.csv" "$GPT" plot --out curve.svg a=adir
expect_error "plot: malformed CSV" "'bad.csv' line 3 is malformed" "$GPT" plot --out curve.svg ours=run a=bad.csv
expect_error "plot: no val rows" "'noval.csv' has no validation loss" "$GPT" plot --out curve.svg a=noval.csv
expect_error "plot: wrong header" "line 1 is not the header 'elapsed_s,val_loss'" "$GPT" plot --out curve.svg a=header.csv
expect_error "plot: not LABEL=RUN" "'run' is not LABEL=RUN" "$GPT" plot --out curve.svg run
expect_error "plot: empty label" "'=run' is not LABEL=RUN" "$GPT" plot --out curve.svg =run
expect_error "plot: no series" "at least one LABEL=RUN" "$GPT" plot --out curve.svg
expect_error "plot: no --out" "--out FILE is required" "$GPT" plot ours=run
expect_error "plot: unknown flag" "unknown option '--bogus'" "$GPT" plot --bogus --out curve.svg ours=run
expect_error "plot: --ymax not a number" "--ymax expects a number" "$GPT" plot --ymax abc --out curve.svg ours=run
expect_error "plot: --ymax below the data" "--ymax 0.5 is not above the lowest val loss" \
    "$GPT" plot --ymax 0.5 --out curve.svg torch=torch.csv
expect_error "plot: --hline not a number" "--hline expects a number" "$GPT" plot --hline x=y --out curve.svg ours=run
expect_error "plot: --hline without text" "--hline expects Y or Y=TEXT" "$GPT" plot --hline 1.5= --out curve.svg ours=run
expect_error "plot: unwritable --out" "nodir/c.svg" "$GPT" plot --out nodir/c.svg ours=run
rm -f curve.svg torch.csv bad.csv noval.csv header.csv

# ---- bench and gradcheck ------------------------------------------------------------------
expect_ok "bench" "$GPT" bench --n-layer 1 --n-embd 16 --n-head 2 --block-size 8 --batch-size 2 --steps 2 --warmup 0
grep -q "MFU" "$TOP/ok.out" || fail "bench: no MFU line"
expect_ok "bench --sample" "$GPT" bench --sample --n-layer 1 --n-embd 16 --n-head 2 --block-size 8 --tokens 50
grep -q "tokens/s" "$TOP/ok.out" || fail "bench --sample: no tokens/s"
expect_error "bench: D % H" "does not divide" "$GPT" bench --n-embd 10 --n-head 3
expect_ok "gradcheck" "$GPT" gradcheck
grep -q "PASS: 19 of 19" "$TOP/ok.out" || fail "gradcheck: not all tensors passed"

# ---- --kernels textbook: the plain loops of model/layers.c ------------------------------------
expect_ok "train --kernels textbook" "$GPT" train --data small.txt --out run_tb --iters 20 --eval-interval 10 $TINY \
    --kernels textbook
# The same run as the fast one above: the batch losses agree to 1e-4 (test_gpt.c bounds them by 1e-5).
paste -d, run/metrics.csv run_tb/metrics.csv | awk -F, 'NR > 1 && $2 != "" {
    d = $2 - $10; if (d < 0) d = -d; if (d > 1e-4 * $10) bad = 1 } END { exit bad }' ||
    fail "train --kernels textbook: its losses do not follow the fast run's"
expect_ok "sample --kernels fast" "$GPT" sample good.bin --tokens 40 --seed 3
cp "$TOP/ok.out" sample_fast.txt
expect_ok "sample --kernels textbook" "$GPT" sample good.bin --tokens 40 --seed 3 --kernels textbook
cmp -s sample_fast.txt "$TOP/ok.out" || fail "sample --kernels textbook: not the fast path's text"
expect_ok "gradcheck --kernels textbook" "$GPT" gradcheck --kernels textbook
grep -q "PASS: 19 of 19" "$TOP/ok.out" || fail "gradcheck --kernels textbook: not all tensors passed"
expect_ok "bench --kernels textbook" "$GPT" bench --kernels textbook --n-layer 1 --n-embd 16 --n-head 2 --block-size 8 \
    --batch-size 2 --steps 2 --warmup 0
expect_error "--kernels slow" "--kernels expects fast or textbook, got 'slow'" "$GPT" train --kernels slow
expect_error "bench --profile --kernels textbook" "--profile times the fast kernels" "$GPT" bench --profile \
    --kernels textbook

# ---- model features: --rope and --qk-norm ------------------------------------------------------
expect_ok "gradcheck --rope --qk-norm" "$GPT" gradcheck --rope --qk-norm
grep -q "PASS: 18 of 18" "$TOP/ok.out" || fail "gradcheck --rope --qk-norm: not all 18 tensors (no wpe) passed"
expect_ok "gradcheck --rope --qk-norm --kernels textbook" "$GPT" gradcheck --rope --qk-norm --kernels textbook
grep -q "PASS: 18 of 18" "$TOP/ok.out" || fail "gradcheck --rope --qk-norm --kernels textbook: not all passed"
expect_error "train: --rope, odd head size" "--rope needs an even head size, and --n-embd 12 / --n-head 4 is 3" \
    "$GPT" train --rope --n-embd 12 --n-head 4 --data small.txt --out o1
expect_ok "train --rope --qk-norm" "$GPT" train --data small.txt --out run_rq --iters 20 --eval-interval 10 $TINY \
    --rope --qk-norm
expect_ok "train --rope --qk-norm --kernels textbook" "$GPT" train --data small.txt --out run_rq_tb --iters 20 \
    --eval-interval 10 $TINY --rope --qk-norm --kernels textbook
paste -d, run_rq/metrics.csv run_rq_tb/metrics.csv | awk -F, 'NR > 1 && $2 != "" {
    d = $2 - $10; if (d < 0) d = -d; if (d > 1e-4 * $10) bad = 1 } END { exit bad }' ||
    fail "train --rope --qk-norm --kernels textbook: its losses do not follow the fast run's"
expect_ok "info: features" "$GPT" info run_rq/ckpt.bin
grep -q "^features: *rope qk-norm$" "$TOP/ok.out" || fail "info: the features are not shown"
grep -q "^wpe " "$TOP/ok.out" && fail "info: a rope model has a wpe"
expect_error "train: resume adding --rope" "--rope differs from the run being resumed" "$GPT" train --resume --out run \
    --rope
expect_ok "sample --rope --qk-norm, fast" "$GPT" sample run_rq/ckpt.bin --tokens 40 --seed 3
cp "$TOP/ok.out" sample_rq.txt
expect_ok "sample --rope --qk-norm, textbook" "$GPT" sample run_rq/ckpt.bin --tokens 40 --seed 3 --kernels textbook
cmp -s sample_rq.txt "$TOP/ok.out" || fail "sample --rope --qk-norm: the KV cache's text is not the textbook path's"
expect_error "export gguf: rope" "GGUF's gpt2 architecture cannot express the model's rope qk-norm" "$GPT" export \
    run_rq/ckpt.bin --format gguf --out rq.gguf
[ -e rq.gguf ] && fail "export gguf: a refused model left a file"
expect_error "export safetensors: rope" "safetensors' GPT2LMHeadModel cannot express the model's rope qk-norm" "$GPT" export \
    run_rq/ckpt.bin --format safetensors --out rq_st
[ -e rq_st ] && fail "export safetensors: a refused model left a directory"

finish
