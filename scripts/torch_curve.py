#!/usr/bin/python3
"""torch_curve.py -- PyTorch's validation loss against training time, as a CSV for `gpt plot`.

usage: scripts/torch_curve.py --out CSV [--python PY] [--torch-gpt PATH] DATA [torch_gpt.py options]

Runs the PyTorch reference trainer torch_gpt.py (by default ../shared/bench/torch_gpt.py,
beside this repository) with the options given, plus --log_interval 1 so that it prints every
iteration's time, and turns its output into a CSV file

    elapsed_s,val_loss

with one row per evaluation. elapsed_s counts what `gpt train` counts in its metrics.csv: the
training time so far with the evaluations included. Here that is the sum of the times
torch_gpt.py prints for the iterations before the evaluation (each covers batch, forward,
backward, clipping and optimizer step) plus the evaluation times printed so far, this one
included. torch_gpt.py prints an evaluation's time to 0.1 s, and the loop's own bookkeeping
between iterations (setting the learning rate, printing) is not in either figure, so the
clock slightly favours PyTorch. Python's start and torch's import are not counted; neither is
gpt's start.

torch_gpt.py has no time budget: choose --max_iters for the time you want (its summary line
shows train_s). It evaluates at step 0, every --eval_interval updates and at the end; this
script passes --eval_interval 250 (gpt train's default) unless one is given. Its own output
goes to stderr except the per-iteration lines; the CSV is written only when the run succeeds,
under a temporary name renamed into place.

    scripts/torch_curve.py --out torch.csv data/tinyshakespeare.txt --max_iters 30 \\
        --eval_interval 10 --n_embd 64 --threads 1
    ./gpt plot --out curve.svg pytorch=torch.csv

Needs a python with torch (--python, default /usr/bin/python3). Nothing in the build or the
tests runs it.
"""
import argparse
import math
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TORCH_GPT = os.path.normpath(os.path.join(REPO, "..", "shared", "bench", "torch_gpt.py"))

# torch_gpt.py's lines (its do_eval and training loop):
#   iter 12: loss 2.5123, lr 1.000e-03, time 41.27ms, 18608 tok/s
#   step 250: train loss 1.9876, val loss 2.0712 (eval 1.3s)
ITER_RE = re.compile(r"^iter (\d+): loss \S+, lr \S+, time ([0-9.]+)ms, ")
STEP_RE = re.compile(r"^step (\d+): train loss \S+, val loss (\S+) \(eval ([0-9.]+)s\)$")


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(
        usage="%(prog)s --out CSV [--python PY] [--torch-gpt PATH] DATA [torch_gpt.py options]",
        description="Runs torch_gpt.py and writes its val loss against training time as elapsed_s,val_loss.",
        allow_abbrev=False)
    p.add_argument("--out", required=True, help="the CSV file to write")
    p.add_argument("--python", default="/usr/bin/python3", help="a python with torch")
    p.add_argument("--torch-gpt", default=DEFAULT_TORCH_GPT, help="torch_gpt.py (default: %(default)s)")
    args, rest = p.parse_known_args()
    for a in rest:
        if a == "--log_interval" or a.startswith("--log_interval="):
            fail("--log_interval is set by this script (1: every iteration's time is needed)")
    if not any(a == "--eval_interval" or a.startswith("--eval_interval=") for a in rest):
        rest += ["--eval_interval", "250"]
    return args, rest


def main():
    args, rest = parse_args()
    if not os.path.isfile(args.torch_gpt):
        fail(f"'{args.torch_gpt}' does not exist (give torch_gpt.py with --torch-gpt PATH)")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        fail(f"cannot write '{args.out}': '{out_dir}' is not a directory")
    cmd = [args.python, args.torch_gpt] + rest + ["--log_interval", "1"]
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
    except OSError as e:
        fail(f"cannot run '{args.python}': {e.strerror}")

    train_s = 0.0     # the iterations' times so far
    eval_s = 0.0      # the evaluations' times so far
    iters = 0         # iterations seen, which must come as 0, 1, 2, ...
    rows = []
    for line in proc.stdout:
        line = line.rstrip("\n")
        m = ITER_RE.match(line)
        if m:
            if int(m.group(1)) != iters:
                proc.kill()
                fail(f"torch_gpt.py printed iteration {m.group(1)} after {iters} iterations (expected every one)")
            iters += 1
            train_s += float(m.group(2)) / 1000.0
            continue
        print(line, file=sys.stderr, flush=True)
        m = STEP_RE.match(line)
        if m:
            step = int(m.group(1))
            if step != iters:
                proc.kill()
                fail(f"torch_gpt.py evaluated at step {step} after {iters} iterations")
            val = float(m.group(2))
            if not math.isfinite(val):
                proc.kill()
                fail(f"torch_gpt.py's val loss at step {step} is {m.group(2)}")
            eval_s += float(m.group(3))
            rows.append((train_s + eval_s, val))
        elif line.startswith("step "):
            proc.kill()
            fail(f"cannot read torch_gpt.py's evaluation line: {line!r}")
    status = proc.wait()
    if status != 0:
        fail(f"torch_gpt.py failed (exit status {status})")
    if not rows:
        fail("torch_gpt.py printed no evaluation (is --eval_iters 0?)")

    tmp = f"{args.out}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write("elapsed_s,val_loss\n")
            for t, v in rows:
                f.write(f"{t:.3f},{v:.4f}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.out)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        fail(f"cannot write '{args.out}': {e.strerror}")
    print(f"wrote {args.out}: {len(rows)} evaluations over {iters} iterations, "
          f"{train_s:.1f} s training + {eval_s:.1f} s evaluation", file=sys.stderr)


if __name__ == "__main__":
    main()
