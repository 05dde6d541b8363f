#!/usr/bin/env python3
"""Checks `gpt export --format gguf` against the real llama.cpp (through node-llama-cpp).

Optional, like the PyTorch scripts: nothing in the build or `make test` needs it. It needs
node and npm: `npm i -E node-llama-cpp@3.21.1` installs into the scratch directory, whose
prebuilt linux-x64 CPU binary is used (never a build from source). From the repository's root:

    python3 scripts/llama_crosscheck.py                       # trains two small checkpoints
    python3 scripts/llama_crosscheck.py --char out/best.bin --bpe out-bpe/best.bin
    python3 scripts/llama_crosscheck.py --char out/best.bin --bench 20   # and the speed, one thread

For a char and a bpe checkpoint (trained briefly on data/tinyshakespeare.txt unless given) it
exports the GGUF file (f32) and checks:

  1. Greedy decoding. For each prompt, gpt.c's ids for it are fed to llama.cpp as ids, and
     llama.cpp's greedy sampler continues until the context window (block_size) is full. gpt.c's
     continuation is `gpt sample --temperature 0`'s text and scripts/gpt_logits.c's ids (the same
     generator and sampler; the script checks that those ids decode to exactly gpt sample's
     text). The two id sequences must be equal, with llama.cpp's KV cache in f32.
  2. Tokenizing text: llama.cpp's ids against `gpt tokenizer encode`'s, for the end of
     tinyshakespeare and, with tiny checkpoints trained a few steps on it, for a text of
     accented, Greek, Cyrillic, CJK and emoji characters, tabs, CR LF, backslashes and control
     bytes. The char tokenizer must give the same ids; for bpe, where llama.cpp's GPT-2 pre-split
     cuts the text differently from gpt.c's, the places are listed with their counts, and
     llama.cpp's ids must still decode to the same text.
  3. For information (not pass/fail): greedy agreement with llama.cpp's default f16 KV cache and
     with f16 and q8_0 exports (how many generated tokens agree before the first difference).
  4. With --bench R: both generate block_size - len(prompt) tokens R times after the first
     prompt, greedy, one thread, each time from a fresh context: `gpt sample --threads 1
     --num-samples R` against llama.cpp. Tokens per second of each; run it on an idle machine.

Exit status 0 when every check of 1 and 2 holds.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_LLAMA_CPP = "node-llama-cpp@3.21.1"
PROMPTS = ["ROMEO:\n", "First Citizen:\nBefore we proceed any further, hear me speak.\n", "\n",
           "KING RICHARD II:\nNo matter where; of comfort no man speak:"]
UNICODE_TEXT = ("Größe, naïve café — “quoted” ’tis; 日本語のテキスト, Ελληνικά, русский; emoji 🙂👍🏽; "
                "a tab\there, CR LF\r\n, a backslash \\ and \\x41 spelled out, a bell \x07 and DEL \x7f.\n")


def run(cmd, stdin=None, cwd=ROOT):
    p = subprocess.run(cmd, input=stdin, capture_output=True, cwd=cwd)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.decode(errors='replace')}")
    return p


def gpt(*args, stdin=None):
    return run([os.path.join(ROOT, "gpt"), *args], stdin=stdin)


def build_helper(scratch):
    run(["make", "--no-print-directory", "gpt"])
    db = run(["make", "-pn", "gpt"]).stdout.decode()
    objs = next(line.split(":=", 1)[1].split() for line in db.splitlines() if line.startswith("LIB_OBJS :="))
    cflags = run(["pkg-config", "--cflags", "stb"]).stdout.decode().split()
    helper = os.path.join(scratch, "gpt_logits")
    run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-fopenmp", "-I.", *cflags, "-o", helper, "scripts/gpt_logits.c",
         *objs, "-lm"])
    return helper


def install_node_llama_cpp(scratch):
    node_dir = os.path.join(scratch, "node")
    pkg = os.path.join(node_dir, "node_modules", "node-llama-cpp", "package.json")
    if os.path.exists(pkg) and json.load(open(pkg))["version"] == NODE_LLAMA_CPP.split("@")[1]:
        return node_dir
    os.makedirs(node_dir, exist_ok=True)
    if not os.path.exists(os.path.join(node_dir, "package.json")):
        with open(os.path.join(node_dir, "package.json"), "w") as f:
            f.write('{"name": "gpt-c-llama-check", "private": true}\n')
    print(f"installing {NODE_LLAMA_CPP} into {node_dir} ...", flush=True)
    run(["npm", "i", "-E", "--no-audit", "--no-fund", NODE_LLAMA_CPP], cwd=node_dir)
    return node_dir


def train(scratch, name, data, extra):
    out = os.path.join(scratch, f"train-{name}")
    ckpt = os.path.join(out, "best.bin")
    if not os.path.exists(ckpt):
        print(f"training {name} in {out} ...", flush=True)
        gpt("train", "--data", data, "--out", out, "--force", "--quiet", "--sample-interval", "0", *extra)
    return ckpt


class Vocab:
    """A checkpoint's tokenizer as gpt.c sees it: encode, decode, each token's bytes."""

    def __init__(self, ckpt):
        self.ckpt = ckpt
        self.bytes = []
        for line in gpt("tokenizer", "vocab", "--tokenizer-file", ckpt).stdout.decode().splitlines():
            _, quoted = line.split("\t", 1)
            self.bytes.append(self._unescape(quoted[1:-1]))

    @staticmethod
    def _unescape(s):
        out, i = bytearray(), 0
        while i < len(s):
            if s[i] != "\\":
                out += s[i].encode()
                i += 1
            elif s[i + 1] == "x":
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
            else:
                out += {"n": b"\n", "r": b"\r", "t": b"\t"}.get(s[i + 1], s[i + 1].encode())
                i += 2
        return bytes(out)

    def encode(self, text):
        ids = gpt("tokenizer", "encode", "--tokenizer-file", self.ckpt, stdin=text.encode()).stdout.split()
        return [int(x) for x in ids]

    def decode(self, ids):
        return b"".join(self.bytes[i] for i in ids)


def llama(node_dir, job):
    out = run(["node", os.path.join(ROOT, "scripts", "llama_run.mjs"), node_dir], stdin=json.dumps(job).encode())
    return json.loads(out.stdout)


def show(b):
    """Bytes as readable text: JSON escapes, and \\xNN for bytes that are not UTF-8."""
    return json.dumps(b.decode("utf-8", errors="backslashreplace"), ensure_ascii=False)[1:-1].replace("\\\\x", "\\x")


def export(ckpt, path, fmt="gguf", dtype="f32"):
    return gpt("export", ckpt, "--format", fmt, "--out", path, "--dtype", dtype).stderr.decode().strip()


def first_difference(a, b):
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), None)
    return i if i is not None else (None if len(a) == len(b) else min(len(a), len(b)))


def greedy_check(ckpt, gguf, vocab, node_dir, helper):
    """Check 1: returns (ok, the prompts' ids and lengths, gpt.c's ids per prompt)."""
    ok = True
    prompts = [(p, vocab.encode(p)) for p in PROMPTS]
    T = llama(node_dir, {"model": gguf})["nCtxTrain"]  # gpt2.context_length: the block size
    jobs = [{"prompt": ids, "n": T - len(ids)} for _, ids in prompts]
    got_all = llama(node_dir, {"model": gguf, "kvType": "F32", "greedy": jobs})["greedy"]
    wants = []
    for (ptext, ids), job, got in zip(prompts, jobs, got_all):
        lines = run([helper, ckpt, "greedy", str(job["n"])], stdin=" ".join(map(str, ids)).encode()).stdout
        rows = [line.split() for line in lines.decode().splitlines()]
        want, gaps = [int(r[0]) for r in rows], [float(r[1]) for r in rows]
        wants.append(want)
        sample = gpt("sample", ckpt, "--prompt", ptext, "--temperature", "0", "--tokens", str(job["n"])).stdout
        expect = ptext.encode() + vocab.decode(want)
        expect += b"" if expect.endswith(b"\n") else b"\n"  # gpt sample ends its output with a newline
        same_text = sample == expect
        i = first_difference(want, got)
        label = f"prompt {show(ptext.encode())[:32]!s:34}"
        if i is None and same_text:
            print(f"  greedy, {label} {len(ids):2} ids + {len(got):2} generated = {len(ids) + len(got)}: equal "
                  f"(gpt sample's text too; smallest top-2 logit gap {min(gaps):.2g})")
        else:
            ok = False
            if not same_text:
                print(f"  greedy, {label} FAILED: gpt_logits's ids do not decode to gpt sample's text")
            if i is not None:
                print(f"  greedy, {label} FAILED at generated token {i}: gpt.c {want[i:i + 1]}, llama.cpp "
                      f"{got[i:i + 1]}; gpt.c's top-2 logit gap there {gaps[i] if i < len(gaps) else float('nan'):.3g}")
    return ok, prompts, jobs, wants


def agreement(node_dir, gguf, kv_type, jobs, wants):
    got_all = llama(node_dir, {"model": gguf, "kvType": kv_type, "greedy": jobs})["greedy"]
    parts = []
    for want, got in zip(wants, got_all):
        i = first_difference(want, got)
        parts.append(f"{len(want) if i is None else i}/{len(want)}")
    return ", ".join(parts)


def split_differences(vocab, ours, theirs):
    """Where the two id sequences cut the same bytes differently: counts of (gpt.c pieces, llama.cpp pieces)."""
    found = collections.Counter()
    i = j = 0
    while i < len(ours) and j < len(theirs):
        if ours[i] == theirs[j]:
            i, j = i + 1, j + 1
            continue
        a, b, pa, pb = i, j, b"", b""
        while True:  # extend both sides until they cover the same bytes again
            if len(pa) <= len(pb) and a < len(ours):
                pa += vocab.bytes[ours[a]]
                a += 1
            elif b < len(theirs):
                pb += vocab.bytes[theirs[b]]
                b += 1
            else:
                break
            if pa == pb:
                break
        key = (" | ".join(show(vocab.bytes[t]) for t in ours[i:a]), " | ".join(show(vocab.bytes[t]) for t in theirs[j:b]))
        found[key] += 1
        i, j = a, b
    return found


def tokenize_check(kind, name, vocab, node_dir, gguf, text):
    ours = vocab.encode(text)
    theirs = llama(node_dir, {"model": gguf, "tokenize": [text]})["tokenize"][0]
    n_bytes = len(text.encode())
    if ours == theirs:
        print(f"  tokenizing {name} ({n_bytes} bytes): {len(ours)} ids, all equal")
        return True
    round_trip = vocab.decode(theirs) == text.encode()
    print(f"  tokenizing {name} ({n_bytes} bytes): gpt.c {len(ours)} ids, llama.cpp {len(theirs)}; llama.cpp's ids "
          f"decode to the text: {'yes' if round_trip else 'NO'}; where they cut it differently (count: gpt.c | llama.cpp):")
    for (a, b), count in split_differences(vocab, ours, theirs).most_common(8):
        print(f"    {count:4}:  {a}   |   {b}")
    return kind == "bpe" and round_trip


def check(kind, ckpt, unicode_ckpt, scratch, node_dir, helper, bench):
    print(f"\n== {kind}: {ckpt}")
    gguf = os.path.join(scratch, f"{kind}.gguf")
    said = export(ckpt, gguf)
    print(" ", said)
    if f"({kind} tokenizer as" not in said:
        sys.exit(f"error: {ckpt} does not hold a {kind} tokenizer")
    vocab = Vocab(ckpt)
    ok, prompts, jobs, wants = greedy_check(ckpt, gguf, vocab, node_dir, helper)
    with open(os.path.join(ROOT, "data", "tinyshakespeare.txt"), "rb") as f:
        tail = f.read()[-20000:].decode("utf-8", errors="ignore")
    ok &= tokenize_check(kind, "the last 20000 bytes of tinyshakespeare", vocab, node_dir, gguf, tail)
    ugguf = os.path.join(scratch, f"{kind}-unicode.gguf")
    export(unicode_ckpt, ugguf)
    ok &= tokenize_check(kind, "a multilingual text, with a tiny model", Vocab(unicode_ckpt), node_dir, ugguf,
                         UNICODE_TEXT)

    print("  for information, greedy tokens equal before the first difference, per prompt:")
    print(f"    f32 file, llama.cpp's default f16 KV cache: {agreement(node_dir, gguf, 'F16', jobs, wants)}")
    for dtype in ("f16", "q8_0"):
        path = os.path.join(scratch, f"{kind}-{dtype}.gguf")
        export(ckpt, path, dtype=dtype)
        print(f"    {dtype} file ({os.path.getsize(path)} bytes), f32 KV cache: "
              f"{agreement(node_dir, path, 'F32', jobs, wants)}")

    if bench:
        ptext, ids = prompts[0]
        n = jobs[0]["n"]
        s = gpt("sample", ckpt, "--prompt", ptext, "--temperature", "0", "--tokens", str(n), "--num-samples",
                str(bench), "--threads", "1").stderr.decode().strip()
        r = llama(node_dir, {"model": gguf, "kvType": "F16", "bench": {"prompt": ids, "n": n, "repeats": bench}})
        b = r["bench"]
        print(f"  speed, one thread, {bench} x {n} greedy tokens after {len(ids)} prompt ids, each from a fresh context:")
        print(f"    gpt sample: {s}")
        print(f"    llama.cpp (f32 file, f16 KV cache, its default): sampled {b['tokens']} tokens in "
              f"{b['seconds']:.2f} s ({b['tokensPerSecond']:.0f} tokens/s)")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--char", help="a checkpoint with a char tokenizer (default: train one)")
    ap.add_argument("--bpe", help="a checkpoint with a bpe tokenizer (default: train one)")
    ap.add_argument("--scratch", default=os.path.join(ROOT, "build", "export-check"),
                    help="working directory: node-llama-cpp, trained checkpoints, exported files "
                         "(default build/export-check)")
    ap.add_argument("--train-iters", type=int, default=400, help="steps for the checkpoints trained here (400)")
    ap.add_argument("--bench", type=int, default=0, metavar="R", help="also time R greedy generations of each side")
    args = ap.parse_args()
    if shutil.which("node") is None or shutil.which("npm") is None:
        sys.exit("error: this check needs node and npm (Debian: apt-get install nodejs npm)")
    scratch = os.path.abspath(args.scratch)
    os.makedirs(scratch, exist_ok=True)
    helper = build_helper(scratch)
    node_dir = install_node_llama_cpp(scratch)

    shakespeare = os.path.join(ROOT, "data", "tinyshakespeare.txt")
    steps = ["--iters", str(args.train_iters), "--eval-interval", str(max(args.train_iters // 2, 1))]
    ckpts = {"char": args.char or train(scratch, "char", shakespeare, steps),
             "bpe": args.bpe or train(scratch, "bpe", shakespeare, steps + ["--tokenizer", "bpe"])}
    unicode_data = os.path.join(scratch, "unicode.txt")
    with open(unicode_data, "w", encoding="utf-8", newline="") as f:
        f.write(UNICODE_TEXT * 60)
    tiny = ["--iters", "2", "--eval-interval", "0", "--eval-iters", "1", "--n-layer", "1", "--n-head", "1",
            "--n-embd", "32", "--block-size", "32", "--batch-size", "2"]
    unicode_ckpts = {"char": train(scratch, "char-unicode", unicode_data, tiny),
                     "bpe": train(scratch, "bpe-unicode", unicode_data, tiny + ["--tokenizer", "bpe", "--vocab-size", "1000"])}
    ok = True
    for kind, ckpt in ckpts.items():
        ok &= check(kind, os.path.abspath(ckpt), unicode_ckpts[kind], scratch, node_dir, helper, args.bench)
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
