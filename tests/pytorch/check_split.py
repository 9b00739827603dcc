#!/usr/bin/env python3
"""Check resviz's He 2016 eq. 5 split against PyTorch autograd.

For every residual block, ∂L/∂x_l is the sum of the part that arrives through the shortcut and the
part that comes back through the branch. resviz measures both norms and their cosine inside its
backward pass (`probe --json`: `grad_norm_shortcut`, `grad_norm_branch`, `grad_cos`, recorded for
the block's *input*). This script computes them independently: it rebuilds each net with the
reference modules of `check_probe.py`, feeds every block two separate copies of its input — one
for the branch (F, and a gate), one for the shortcut — and reads each copy's gradient from autograd.
A shortcut that reads the pre-activated input (v2, reluonly projections) applies the block's own
pre-activation to its copy, so the split is of ∂L/∂x_l itself.

Usage: resviz probe --dump DIR --models v1-20,v2-20,... ; python check_split.py DIR
Developer tool only (resviz does not depend on PyTorch).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import check_probe as cp  # noqa: E402

_forward = cp.Block.forward


def split_forward(self, x):
    """The block on two copies of x: `_xb` feeds the branch, `_xs` the shortcut."""
    xb = x.clone()
    xb.retain_grad()
    self._xb, self._xs = xb, None
    if self.sc_kind != "none":
        self._xs = x.clone()
        self._xs.retain_grad()
    return _forward(self, xb)


def split_shortcut(self, x, preact):
    xs = self._xs
    if self.sc_kind == "identity":
        return xs
    if self.sc_kind == "pad":
        return cp.pad_shortcut(xs, self.cout, self.stride)
    if self.seed_preset or self.variant not in cp.PRE_ACT or self.skip_preact:
        return self.shortcut(xs)
    # The projection of a pre-activation block reads ReLU(BN x) (v2) or ReLU x (reluonly).
    pre = cp.relu(self.bn1(xs)) if self.variant == "v2" else cp.relu(xs)
    return self.shortcut(pre)


def reference(d: Path, name: str, x: torch.Tensor, y: torch.Tensor) -> list[tuple]:
    sd = load_file(str(d / f"{name}.safetensors"))
    net = cp.Net(name, x.shape[1], x.shape[2], x.shape[3], sd["fc.weight"].shape[0],
                 sd["stem.conv.weight"].shape[0], cp.Dropout("engine"))
    net.load_state_dict(sd, strict=True)
    net = net.double().train()
    cp.RELU.reset()
    loss = torch.nn.functional.cross_entropy(net(x.double()), y)
    loss.backward()
    out = []
    for blocks in net.stages:
        for b in blocks:
            br = b._xb.grad
            sc = b._xs.grad if b._xs is not None else torch.zeros_like(br)
            ns, nb = sc.norm().item(), br.norm().item()
            cos = (sc * br).sum().item() / (ns * nb) if ns * nb > 0 else 0.0
            out.append((ns, nb, cos, (sc + br).norm().item()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", type=Path, help="directory written by `resviz probe --dump DIR`")
    ap.add_argument("--tol", type=float, default=1e-4, help="max relative error of the norms")
    ap.add_argument("--cos-tol", type=float, default=1e-4, help="max absolute error of the cosine")
    args = ap.parse_args()
    cp.Block.forward, cp.Block._shortcut = split_forward, split_shortcut

    probe = json.loads((args.dump / "probe.json").read_text())
    batch = load_file(str(args.dump / "batch.safetensors"))
    x, y = batch["x"], batch["y"]
    failed = 0
    print(f"{'model':<14}{'blocks':>7}{'max rel sc':>12}{'max rel br':>12}{'max cos':>10}"
          f"{'sum err':>10}{'median share':>14}  status")
    for m in probe["models"]:
        name = m["model"]
        if name.startswith("dropsc"):
            continue  # the mask is replayed only by check_probe.py
        ref = reference(args.dump, name, x, y)
        rows = m["blocks"][1:]
        errs_s, errs_b, errs_c, errs_t, shares = [], [], [], [], []
        for prev, r, (ns, nb, cos, nt) in zip(m["blocks"], rows, ref):
            rs, rb, rc = r["grad_norm_shortcut"], r["grad_norm_branch"], r["grad_cos"]
            errs_s.append(abs(rs - ns) / max(ns, 1e-30) if ns > 0 else abs(rs))
            errs_b.append(abs(rb - nb) / max(nb, 1e-30))
            errs_c.append(abs(rc - cos))
            # The parts sum to ∂L/∂x_l, the previous boundary's gradient.
            errs_t.append(abs(prev["grad_norm"] - nt) / nt)
            shares.append(rs / (rs + rb))
        shares.sort()
        ok = max(errs_s) <= args.tol and max(errs_b) <= args.tol and max(errs_c) <= args.cos_tol \
            and max(errs_t) <= args.tol
        failed += not ok
        print(f"{name:<14}{len(rows):>7}{max(errs_s):>12.1e}{max(errs_b):>12.1e}"
              f"{max(errs_c):>10.1e}{max(errs_t):>10.1e}{shares[len(shares) // 2]:>14.3f}"
              f"  {'PASS' if ok else 'FAIL'}")
    print(f"{failed} model(s) failed" if failed else "all models passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
