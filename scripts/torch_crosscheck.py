#!/usr/bin/python3
"""torch_crosscheck.py -- a whole gpt.c training run, redone in PyTorch from the same start.

usage: scripts/torch_crosscheck.py [--data FILE] [--seed S] [--iters N] [--ckpt CKPT] [--threads N]

`./gpt train` draws its initial weights and every batch from its own seeded generator
(xoshiro256** seeded through splitmix64, common/common.c). This script rebuilds exactly those
weights and those batches in Python, then trains the model of DESIGN.md section 3 with
PyTorch's autograd and torch.optim.AdamW under gpt.c's default schedule (the defaults of
`./gpt train --help`: warm-up 100, cosine from 1e-3 to 1e-4, weight decay 0.1 on the 2-D
tensors, clipping at 1.0, B 12, T 64). At the end it prints the loss on the whole validation
split (every non-overlapping window of block_size, no sampling noise), and with --ckpt the same
loss of a gpt.c checkpoint, evaluated by the same PyTorch code.

So it answers "does gpt.c train like PyTorch?" without seed noise: the same start and the same
data on both sides. On tinyshakespeare with seed 1337 the two runs end at a validation loss
equal to seven digits (1.9189497 here). Runs with different seeds differ by about +-0.02,
for gpt.c and for nanoGPT-style PyTorch alike.

Optional tooling, like torch_reference.py (whose model and checkpoint reader it uses): needs
python3-torch and numpy; nothing in the build or the tests runs it. Takes a few minutes.

    ./gpt train --seed 1337 --out /tmp/run && scripts/torch_crosscheck.py --seed 1337 --ckpt /tmp/run/ckpt.bin
"""
import argparse
import importlib.util
import math
import os
import sys

M64 = (1 << 64) - 1


class Rng:
    """gpt.c's generator (common/common.c): xoshiro256**, seeded by four splitmix64 draws."""

    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def u64(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):  # rejection sampling, as rng_below
        limit = M64 - (M64 % n)
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def double(self):
        return (self.u64() >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):  # Box-Muller, cosine branch, as rng_normal
        u1, u2 = self.double(), self.double()
        u1 = max(u1, 1e-300)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


def derived_seed(seed, step, purpose):  # train/train.c
    r = Rng(purpose)
    r = Rng(r.u64() ^ (step & M64))
    r = Rng(r.u64() ^ seed)
    return r.u64()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--data", default=os.path.join(here, "..", "data", "tinyshakespeare.txt"))
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--ckpt", help="a gpt.c checkpoint to evaluate the same way")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()

    import numpy as np
    import torch
    spec = importlib.util.spec_from_file_location("torch_reference", os.path.join(here, "torch_reference.py"))
    tr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tr)
    torch.set_num_threads(a.threads)

    text = open(a.data, encoding="utf-8").read()
    chars = sorted(set(text))  # gpt.c's character tokenizer: the same ids
    ids = torch.tensor([{c: i for i, c in enumerate(chars)}[c] for c in text])
    n_train = int(len(ids) * 0.9)  # as data/loader.c
    train, val = ids[:n_train], ids[n_train:]
    V, L, H, C, T, B = len(chars), 4, 4, 128, 64, 12
    cfg = {"vocab_size": V, "block_size": T, "n_layer": L, "n_head": H, "n_embd": C}

    # gpt_init: one stream walks the parameter table in order; N(0, 0.02) for matrices and
    # embeddings, N(0, 0.02/sqrt(2L)) for w_o and w_proj, LayerNorm gains 1.
    rng = Rng(a.seed)
    P = {}
    for name, shape, _ in tr.param_table(V, T, L, C):
        if len(shape) == 1:
            w = np.ones(shape, dtype=np.float32)
        else:
            std = 0.02 / math.sqrt(2 * L) if name.endswith((".w_o", ".w_proj")) else 0.02
            w = np.array([rng.normal() * std for _ in range(math.prod(shape))], dtype=np.float32).reshape(shape)
        P[name] = torch.tensor(w, requires_grad=True)

    decay = [t for t in P.values() if t.dim() >= 2]
    no_decay = [t for t in P.values() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
    warmup, lr_max, lr_min = 100, 1e-3, 1e-4

    def lr_at(it):
        if it < warmup:
            return lr_max * (it + 1) / (warmup + 1)
        r = (it - warmup) / max(1, a.iters - warmup)
        return lr_min + 0.5 * (1 + math.cos(math.pi * r)) * (lr_max - lr_min)

    pos = torch.arange(T)
    for it in range(a.iters):
        r = Rng(derived_seed(a.seed, it, 1000))
        ix = torch.tensor([r.below(n_train - T) for _ in range(B)])
        x, y = train[ix[:, None] + pos], train[ix[:, None] + pos + 1]
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        _, loss = tr.forward(P, cfg, x, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
        opt.step()
        if it % 250 == 0 or it == a.iters - 1:
            print("step %4d: batch loss %.4f" % (it + 1, loss.item()), flush=True)

    def full_val(params):
        nw = (len(val) - 1) // T
        total = 0.0
        with torch.no_grad():
            for s in range(0, nw, 64):
                w = torch.arange(s, min(nw, s + 64))
                xs = val[w[:, None] * T + pos]
                total += tr.forward(params, cfg, xs, val[w[:, None] * T + pos + 1])[1].item() * len(w)
        return total / nw

    print("PyTorch from gpt.c's start: validation loss %.7f (whole split, %d windows)" %
          (full_val(P), (len(val) - 1) // T))
    if a.ckpt:
        ccfg, flat = tr.load_checkpoint(a.ckpt)
        if ccfg["vocab_size"] != V or ccfg["n_layer"] != L or ccfg["n_embd"] != C or ccfg["block_size"] != T:
            sys.exit("error: %s is not a default-sized character model of this text" % a.ckpt)
        Q, off = {}, 0
        for name, shape, _ in tr.param_table(V, T, L, C):
            n = math.prod(shape)
            Q[name] = torch.tensor(flat[off:off + n].reshape(shape))
            off += n
        print("gpt.c checkpoint %s: validation loss %.7f" % (a.ckpt, full_val(Q)))


if __name__ == "__main__":
    main()
