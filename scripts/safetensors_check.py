#!/usr/bin/python3
"""Checks `gpt export --format safetensors` in PyTorch: the exported directory, read as Hugging
Face's GPT2LMHeadModel reads it, computes gpt.c's logits.

Optional, like the other PyTorch scripts: it needs Debian's python3-torch (run it with the
system /usr/bin/python3 that the Debian package serves). From the repository's root:

    /usr/bin/python3 scripts/safetensors_check.py                 # trains two small checkpoints
    /usr/bin/python3 scripts/safetensors_check.py --ckpt out/best.bin

For each checkpoint (by default a char and a bpe one, trained briefly on
data/tinyshakespeare.txt, shared with scripts/llama_crosscheck.py) it exports model.safetensors
and config.json, then:

  - reads model.safetensors itself: the u64 header length, the JSON header, each tensor's
    dtype, shape and byte range (no safetensors library is needed; if one is installed, its
    reading is compared too);
  - builds GPT-2 in PyTorch from config.json and those tensors exactly as transformers'
    GPT2LMHeadModel defines it: Conv1D layers y = x W + b with W (in, out), c_attn's output
    split into q, k, v, heads of n_embd / n_head, a causal softmax scaled by 1/sqrt(head size),
    gelu_new (the tanh GELU), LayerNorm with weight and bias, lm_head tied to wte (if the
    transformers package is installed, GPT2LMHeadModel.from_pretrained is run too);
  - compares its logits over a whole window of block_size tokens of text with the logits of
    gpt.c's forward pass (scripts/gpt_logits.c), and the greedy continuation of a prompt until
    the window is full with gpt.c's (the same generator and sampler as gpt sample
    --temperature 0).

Exit status 0 when the f32 export's logits agree within 1e-4 (relative to the largest logit)
and every greedy token is equal.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_crosscheck import ROOT, Vocab, build_helper, export, run, train  # noqa: E402

DTYPES = {"F32": torch.float32, "F16": torch.float16}


def read_safetensors(path):
    """The tensors of a .safetensors file, parsed from its bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=DTYPES[e["dtype"]])
        tensors[name] = t.reshape(e["shape"]).float()
    return tensors, meta


class GPT2:
    """GPT2LMHeadModel's forward pass (eval mode), from config.json and the tensors."""

    def __init__(self, config, t):
        self.c, self.t = config, t
        self.H = config["n_head"]
        assert config["activation_function"] == "gelu_new" and config["tie_word_embeddings"]

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.t[name + ".weight"], self.t[name + ".bias"],
                                              self.c["layer_norm_epsilon"])

    def conv1d(self, x, name):  # transformers' Conv1D: x @ weight + bias, weight (in, out)
        return torch.addmm(self.t[name + ".bias"], x, self.t[name + ".weight"])

    def logits(self, ids):
        t, T = self.t, len(ids)
        C = self.c["n_embd"]
        hd = C // self.H
        x = t["transformer.wte.weight"][ids] + t["transformer.wpe.weight"][:T]
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        for l in range(self.c["n_layer"]):
            p = f"transformer.h.{l}."
            q, k, v = self.conv1d(self.ln(x, p + "ln_1"), p + "attn.c_attn").split(C, dim=-1)
            q, k, v = (z.view(T, self.H, hd).transpose(0, 1) for z in (q, k, v))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            att = att.masked_fill(~mask, torch.finfo(att.dtype).min).softmax(dim=-1)
            y = (att @ v).transpose(0, 1).reshape(T, C)
            x = x + self.conv1d(y, p + "attn.c_proj")
            h = self.conv1d(self.ln(x, p + "ln_2"), p + "mlp.c_fc")
            h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h.pow(3))))
            x = x + self.conv1d(h, p + "mlp.c_proj")
        return self.ln(x, "transformer.ln_f") @ t["transformer.wte.weight"].T


def gpt_logits(helper, ckpt, ids, V):
    out = run([helper, ckpt, "logits"], stdin=" ".join(map(str, ids)).encode()).stdout.decode()
    rows = [[float(v) for v in line.split()] for line in out.splitlines()]
    assert len(rows) == len(ids) and all(len(r) == V for r in rows)
    return torch.tensor(rows, dtype=torch.float64)


def check(ckpt, scratch, helper):
    print(f"\n== {ckpt}")
    ok = True
    vocab = Vocab(ckpt)
    with open(os.path.join(ROOT, "data", "tinyshakespeare.txt"), "rb") as f:
        text = f.read()[-4000:].decode("utf-8", errors="ignore")
    for dtype in ("f32", "f16"):
        out = os.path.join(scratch, f"hf-{os.path.basename(os.path.dirname(ckpt))}-{dtype}")
        print(" ", export(ckpt, out, fmt="safetensors", dtype=dtype))
        with open(os.path.join(out, "config.json")) as f:
            config = json.load(f)
        tensors, meta = read_safetensors(os.path.join(out, "model.safetensors"))
        assert meta.get("format") == "pt", meta
        T, V = config["n_positions"], config["vocab_size"]
        try:
            from safetensors.torch import load_file
            other = load_file(os.path.join(out, "model.safetensors"))
            same = all(torch.equal(other[k].float(), v) for k, v in tensors.items()) and len(other) == len(tensors)
            print(f"  the safetensors library reads the same tensors: {'yes' if same else 'NO'}")
            ok &= same or dtype != "f32"
        except ImportError:
            pass
        model = GPT2(config, tensors)
        ids = vocab.encode(text)[:T]
        with torch.no_grad():
            ours = model.logits(torch.tensor(ids)).double()
        theirs = gpt_logits(helper, ckpt, ids, V)
        scale = theirs.abs().max().item()
        diff = (ours - theirs).abs().max().item()
        argmax_same = int((ours.argmax(-1) == theirs.argmax(-1)).sum())
        line = (f"  {dtype}: logits over {len(ids)} positions x {V}: largest |difference| {diff:.3g} "
                f"(largest logit {scale:.3g}); the same most likely token at {argmax_same}/{len(ids)} positions")
        if dtype == "f32":
            good = diff <= 1e-4 * scale and argmax_same == len(ids)
            ok &= good
            print(line + ("" if good else "  FAILED"))
        else:
            print(line + "  (for information)")
        try:
            import transformers
            hf = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
            with torch.no_grad():
                hf_logits = hf(torch.tensor([ids])).logits[0].double()
            d = (hf_logits - theirs).abs().max().item()
            print(f"  transformers' GPT2LMHeadModel: largest |difference| {d:.3g}")
            ok &= d <= 1e-4 * scale or dtype != "f32"
        except ImportError:
            pass
        if dtype == "f32":
            prompt = vocab.encode("ROMEO:\n")
            n = T - len(prompt)
            rows = run([helper, ckpt, "greedy", str(n)], stdin=" ".join(map(str, prompt)).encode()).stdout.split(b"\n")
            want = [int(r.split()[0]) for r in rows if r]
            seq = list(prompt)
            with torch.no_grad():
                for _ in range(n):
                    seq.append(int(model.logits(torch.tensor(seq))[-1].argmax()))
            got = seq[len(prompt):]
            same = got == want
            ok &= same
            print(f"  greedy after 'ROMEO:\\n' until the window is full ({n} tokens): "
                  f"{'equal to gpt.c' if same else 'DIFFERENT from gpt.c'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", action="append", help="a checkpoint to check (repeatable; default: train a char and a bpe one)")
    ap.add_argument("--scratch", default=os.path.join(ROOT, "build", "export-check"),
                    help="working directory (default build/export-check)")
    ap.add_argument("--train-iters", type=int, default=400, help="steps for the checkpoints trained here (400)")
    args = ap.parse_args()
    scratch = os.path.abspath(args.scratch)
    os.makedirs(scratch, exist_ok=True)
    helper = build_helper(scratch)
    torch.set_num_threads(1)
    ckpts = args.ckpt
    if not ckpts:
        data = os.path.join(ROOT, "data", "tinyshakespeare.txt")
        steps = ["--iters", str(args.train_iters), "--eval-interval", str(max(args.train_iters // 2, 1))]
        ckpts = [train(scratch, "char", data, steps), train(scratch, "bpe", data, steps + ["--tokenizer", "bpe"])]
    ok = True
    for ckpt in ckpts:
        ok &= check(os.path.abspath(ckpt), scratch, helper)
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
