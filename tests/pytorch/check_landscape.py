#!/usr/bin/env python3
"""Check `resviz landscape --dump DIR` (Li et al. 2018) against an independent PyTorch run.

For every model of DIR/landscape.json this script rebuilds the net with check_probe.py's
reference modules, loads DIR/MODEL.safetensors (the weights as measured, before batch-norm
re-estimation) and DIR/MODEL.directions.safetensors (resviz's two random directions: their
Gaussian draw cannot be replayed here, so the script checks that they are filter-normalised as
Li et al. say, and then uses them), and redoes the measurement in float64:

- batch norm re-estimated on the dumped training batches (cumulative average, as check_shatter.py);
- the mean cross-entropy over the dumped images, batch norm in evaluation mode, at
  θ + α·d₁ + β·d₂ on the grid, at θ and on the slice β = 0;
- the non-convex fraction of the grid (an interior point whose second difference along α or β
  is below −1e-5 × the largest |loss| of its three points), and over the basin (the points whose
  loss is at most the loss at θ + ½ ln C);
- at each Hessian point, the Hessian of that loss over the weights the landscape perturbs (every
  tensor of rank ≥ 2), from PyTorch's exact double-backward Hessian-vector products: the full
  matrix and `torch.linalg.eigvalsh` when it has at most --full-max rows, else Lanczos with full
  re-orthogonalisation for --lanczos-steps steps. resviz estimates the extreme eigenvalues by
  Lanczos on central differences of float32 gradients, stopping early once the extremes move by
  less than 1e-2 of the larger: the `lz` columns are this script's own Lanczos with exact products,
  the same step cap and stopping rule and a different start, to tell the truncation of Lanczos
  from a numerical error.

Columns: `dir` worst |‖d filter‖/‖θ filter‖ − 1| (and zero where not perturbed), `loss err` the
worst relative error over θ, grid and slice, `ncvx` resviz / reference non-convex fraction of the
grid and of the basin; per Hessian point λ_min and λ_max of resviz and of the exact solve, and
|λ_min/λ_max| of resviz, of the exact solve and of the `lz` run. Exit status non-zero if a loss
misses --tol, a direction is not filter-normalised, a non-convex fraction differs, or resviz's
λ_max misses the exact one by more than --hess-tol (relative) or its ratio by more than --hess-tol
(absolute).

A further line per Hessian point runs resviz's own method in float64 (central differences of
gradients with ε = --eps, 1e-2 as resviz's `hessian::HVP_EPS`, the same Lanczos cap and rule) and
gives ‖H·v_fd − H·v‖/‖H·v‖ for a random unit v: where that run lands with resviz and not with the
exact products, the finite-difference method is the cause, not resviz's implementation of it.

Usage (a small net: float64 convolutions' double backward is slow on the CPU, ~1 s per product
for width 2 and 8 images on the shared 2-core machine, so the exact solve is Lanczos, 80 steps):
  resviz landscape --models plain-8,v1-8 --width 2 --dataset synthetic --images 8 --grid 7 \
      --slice-points 9 --hessian-steps 30 --seed 1 --dump DIR --json > /dev/null
  python tests/pytorch/check_landscape.py DIR --full-max 0 --lanczos-steps 80
Developer tool only (resviz does not depend on PyTorch).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import check_probe as cp  # noqa: E402
from check_shatter import build, precise_bn  # noqa: E402


def mean_loss(net: nn.Module, x, y, chunk: int = 256) -> torch.Tensor:
    """Mean cross-entropy over all images, batch norm in evaluation mode (a graph is kept)."""
    net.eval()
    total = 0.0
    for s in range(0, x.shape[0], chunk):
        cp.RELU.reset()
        total = total + F.cross_entropy(net(x[s:s + chunk]), y[s:s + chunk], reduction="sum")
    return total / x.shape[0]


def direction_error(theta: dict, d: dict) -> float:
    """Worst |‖d_f‖/‖θ_f‖ − 1| over filters of rank ≥ 2 tensors, and max |d| of the others."""
    worst = 0.0
    for k, w in theta.items():
        if w.dim() <= 1:
            worst = max(worst, d[k].abs().max().item() if d[k].numel() else 0.0)
            continue
        wf, df = w.flatten(1).norm(dim=1), d[k].flatten(1).norm(dim=1)
        ok = wf > 1e-12
        worst = max(worst, ((df[ok] / wf[ok]) - 1).abs().max().item())
    return worst


def nonconvex(f: np.ndarray, threshold: float = math.inf) -> tuple[int, float]:
    """(points, fraction): interior points at or below `threshold`, the non-convex fraction."""
    g = f.shape[0]
    points = count = 0

    def concave(a, b, c):
        return a - 2 * b + c < -1e-5 * max(abs(a), abs(b), abs(c))

    for j in range(1, g - 1):
        for i in range(1, g - 1):
            if math.isnan(f[j, i]) or f[j, i] > threshold:
                continue
            points += 1
            count += concave(f[j, i - 1], f[j, i], f[j, i + 1]) or \
                concave(f[j - 1, i], f[j, i], f[j + 1, i])
    return points, (count / points if points else math.nan)


class Hessian:
    """Exact Hessian-vector products of the mean loss over the rank ≥ 2 weights at the net's
    current weights (double backward)."""

    def __init__(self, net, x, y):
        self.params = [p for p in net.parameters() if p.dim() >= 2]
        loss = mean_loss(net, x, y)
        self.grad = torch.cat([g.flatten() for g in
                               torch.autograd.grad(loss, self.params, create_graph=True)])
        self.n = self.grad.numel()

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(self.grad, self.params, grad_outputs=v, retain_graph=True)
        return torch.cat([h.flatten() for h in hv])

    def hvps(self, vs: torch.Tensor) -> torch.Tensor:
        """H·v for each row of `vs`, in one vectorised backward (a loop if vmap refuses)."""
        try:
            hv = torch.autograd.grad(self.grad, self.params, grad_outputs=vs, retain_graph=True,
                                     is_grads_batched=True)
            return torch.cat([h.flatten(1) for h in hv], dim=1)
        except RuntimeError:
            return torch.stack([self.hvp(v) for v in vs])

    def full(self, chunk: int = 64) -> torch.Tensor:
        eye = torch.eye(self.n, dtype=self.grad.dtype)
        h = torch.cat([self.hvps(eye[i:i + chunk]) for i in range(0, self.n, chunk)])
        return 0.5 * (h + h.T)


def fd_hvp(net, x, y, eps: float):
    """resviz's method in float64: H·v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε over the rank ≥ 2
    weights (‖v‖ = 1), the net's weights restored after."""
    params = [p for p in net.parameters() if p.dim() >= 2]
    theta = [p.detach().clone() for p in params]

    def grad_at(v, s):
        at = 0
        with torch.no_grad():
            for p, t in zip(params, theta):
                p.copy_(t + s * v[at:at + p.numel()].view_as(p))
                at += p.numel()
        g = torch.autograd.grad(mean_loss(net, x, y), params)
        return torch.cat([t.flatten() for t in g])

    def op(v):
        hv = (grad_at(v, eps) - grad_at(v, -eps)) / (2 * eps)
        with torch.no_grad():
            for p, t in zip(params, theta):
                p.copy_(t)
        return hv

    return op


def lanczos(op, n: int, steps: int, tol: float, seed: int, dtype) -> tuple[float, float, int]:
    """(λ_min, λ_max, steps taken): Lanczos, fully re-orthogonalised, from a Gaussian start;
    with `tol` > 0 it stops as resviz does (from the third step, both extremes moved by less
    than tol × the larger)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=g, dtype=dtype)
    v /= v.norm()
    basis, alpha, beta, last = [], [], [], (math.nan, math.nan)
    for step in range(min(steps, n)):
        w = op(v)
        alpha.append(float(w @ v))
        basis.append(v)
        for b in basis:
            w = w - (w @ b) * b
        t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
        ev = np.linalg.eigvalsh(t)
        ritz = (ev[0], ev[-1])
        moved = max(abs(ritz[0] - last[0]), abs(ritz[1] - last[1]))
        scale = max(abs(ritz[0]), abs(ritz[1]), 1e-300)
        last = ritz
        b = float(w.norm())
        if (tol > 0 and step >= 2 and moved < tol * scale) or b <= 1e-12 * scale:
            return ritz[0], ritz[1], step + 1
        beta.append(b)
        v = w / b
    return last[0], last[1], min(steps, n)


def check_model(d: Path, m: dict, inp: dict, args) -> tuple[bool, list[str]]:
    name, p = m["model"], m["params"]
    dt = torch.float64
    x, y = inp["x"].to(dt), inp["y"]
    net = build(d, name, tuple(x.shape[1:]), dt)
    precise_bn(net, inp["bn"].to(dt), inp["bn_sizes"].tolist())
    net.eval()
    dirs = load_file(str(d / f"{name}.directions.safetensors"))
    named = dict(net.named_parameters())
    theta = {k: v.detach().clone() for k, v in named.items()}
    d1 = {k: dirs[f"d1.{k}"].to(dt) for k in theta}
    d2 = {k: dirs[f"d2.{k}"].to(dt) for k in theta}
    dir_err = max(direction_error(theta, d1), direction_error(theta, d2))

    def set_at(a: float, b: float) -> None:
        with torch.no_grad():
            for k, v in named.items():
                v.copy_(theta[k] + a * d1[k] + b * d2[k])

    def loss_at(a: float, b: float) -> float:
        set_at(a, b)
        with torch.no_grad():
            return float(mean_loss(net, x, y))

    coords = m["coords"]
    grid = np.array([[loss_at(a, b) for a in coords] for b in coords])
    slice_ = np.array([loss_at(a, 0.0) for a in m["slice_coords"]])
    centre = loss_at(0.0, 0.0)
    rel = lambda a, b: np.max(np.abs(np.asarray(a) - b) / np.maximum(np.abs(b), 1e-300))  # noqa
    loss_err = max(rel(m["losses"], grid), rel(m["slice"], slice_), rel(m["centre_loss"], centre))
    classes = net.fc.out_features
    threshold = centre + 0.5 * math.log(max(classes, 2))
    _, frac = nonconvex(grid)
    bpts, bfrac = nonconvex(grid, threshold)
    same = lambda a, b: (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-12  # noqa
    ncvx_ok = same(m["nonconvex_frac"], frac) and same(m["basin_nonconvex_frac"], bfrac) \
        and m["basin_points"] == bpts
    ok = loss_err <= args.tol and dir_err <= 1e-6 and ncvx_ok
    lines = [f"{name:<14}{dir_err:>8.0e}{loss_err:>10.1e}   ncvx {m['nonconvex_frac']:.3f}/"
             f"{frac:.3f} basin {m['basin_nonconvex_frac']:.3f}/{bfrac:.3f} "
             f"({m['basin_points']}/{bpts} pts)"]
    for h in m["hessian"]:
        a, b = h["at"]
        set_at(a, b)
        hs = Hessian(net, x, y)
        if hs.n <= args.full_max:
            ev = torch.linalg.eigvalsh(hs.full())
            lo, hi, how = float(ev[0]), float(ev[-1]), f"eigvalsh n={hs.n}"
        else:
            lo, hi, k = lanczos(hs.hvp, hs.n, args.lanczos_steps, 0.0, 1, dt)
            how = f"lanczos {k} steps n={hs.n}"
        lz = lanczos(hs.hvp, hs.n, p["hessian_steps"], 1e-2, 2, dt)
        # resviz's own method (central differences, ε = 1e-2 as hessian::HVP_EPS) in float64:
        # where it lands with resviz rather than with the exact products, the method is the cause.
        v = torch.randn(hs.n, generator=torch.Generator().manual_seed(3), dtype=dt)
        v /= v.norm()
        exact_v = hs.hvp(v)  # before fd_hvp moves the weights under the graph
        fd = lanczos(fd_hvp(net, x, y, args.eps), hs.n, p["hessian_steps"], 1e-2, 2, dt)
        fd_err = float((fd_hvp(net, x, y, args.eps)(v) - exact_v).norm() / exact_v.norm())
        ratio = abs(lo / hi)
        max_err = abs(h["max"] - hi) / abs(hi)
        ratio_err = abs(h["ratio"] - ratio)
        h_ok = max_err <= args.hess_tol and ratio_err <= args.hess_tol
        ok = ok and h_ok
        lines.append(f"    hessian at ({a:+.2f},{b:+.2f}) [{how}]: λ_min {h['min']:.4e} / "
                     f"{lo:.4e}, λ_max {h['max']:.4e} / {hi:.4e} (rel err {max_err:.1e}); "
                     f"|λ_min/λ_max| resviz {h['ratio']:.4f} exact {ratio:.4f} "
                     f"lz-{lz[2]} {abs(lz[0] / lz[1]):.4f} (abs err {ratio_err:.1e}) "
                     f"{'ok' if h_ok else 'MISS'}")
        lines.append(f"      central differences in float64 (ε {args.eps:g}): λ_min {fd[0]:.4e} "
                     f"λ_max {fd[1]:.4e} |ratio| {abs(fd[0] / fd[1]):.4f} ({fd[2]} steps); "
                     f"‖H·v_fd − H·v‖/‖H·v‖ = {fd_err:.2e} for a random unit v")
    lines[0] += f"  {'PASS' if ok else 'FAIL'}"
    return ok, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", type=Path, help="directory written by `resviz landscape --dump DIR`")
    ap.add_argument("--tol", type=float, default=1e-4, help="max relative error of a loss")
    ap.add_argument("--hess-tol", type=float, default=0.05,
                    help="max relative error of λ_max and absolute error of |λ_min/λ_max|")
    ap.add_argument("--full-max", type=int, default=3000,
                    help="largest Hessian built in full for eigvalsh (else Lanczos)")
    ap.add_argument("--lanczos-steps", type=int, default=200,
                    help="Lanczos steps of the exact solve when the Hessian is too large")
    ap.add_argument("--eps", type=float, default=1e-2,
                    help="step of the float64 central-difference run (resviz's HVP_EPS)")
    ap.add_argument("--models", default="", help="comma-separated subset of the dump's models")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report = json.loads((args.dump / "landscape.json").read_text())
    inp = load_file(str(args.dump / "inputs.safetensors"))
    only = {s for s in args.models.split(",") if s}
    print(f"dump {args.dump}  images {inp['x'].shape[0]}  bn batches {len(inp['bn_sizes'])}  "
          f"reference float64")
    print(f"{'model':<14}{'dir':>8}{'loss err':>10}   non-convex fraction resviz/reference")
    failed = 0
    for m in report["models"]:
        if only and m["model"] not in only:
            continue
        try:
            ok, lines = check_model(args.dump, m, inp, args)
        except Exception as e:  # noqa: BLE001 - report and carry on with the next model
            ok, lines = False, [f"{m['model']:<14}  FAIL: {type(e).__name__}: {e}"]
        print("\n".join(lines))
        failed += not ok
    print(f"{failed} model(s) failed" if failed else "all models passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
