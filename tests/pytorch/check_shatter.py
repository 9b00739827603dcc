#!/usr/bin/env python3
"""Check `resviz shatter --dump DIR` (Balduzzi et al. 2017) against an independent PyTorch run.

For every model of DIR/shatter.json this script rebuilds the net with check_probe.py's reference
modules, loads DIR/MODEL.safetensors (the weights as measured, before batch-norm re-estimation),
and redoes the measurement from DIR/inputs.safetensors alone, in float64:

- batch norm re-estimated on the dumped training batches as a cumulative average (training-mode
  forward passes, momentum 1/(k+1) for batch k; `:bn=off` nets have nothing to re-estimate);
- batch norm in evaluation mode, for each image pair (x0, x1) the points x(t) = x0 + t·(x1 − x0),
  t = i/(points − 1), the logit of the pair's class and g(t) = ⟨∇ₓ logit(x(t)), x1 − x0⟩ by
  autograd;
- the autocorrelation of g at lags 1…lags (mean removed, Σ over the pairs that exist, over the
  lag-0 sum), per pair its lag 1, their mean, standard deviation (n − 1) and interquartile range
  (numpy's linear percentiles), the mean autocorrelation per lag;
- Balduzzi's two laws fitted to the mean lag 1 per family (c·2^−L and c/√L, least squares in c).

Columns: `g err` max |g_resviz − g_ref| / max |g_ref| over the first pair's line (the report keeps
that line only), `logit err` the same for the logit, `lag-1 err` the largest absolute error of a
pair's lag-1 autocorrelation, `acf err` of the mean autocorrelation at any lag, `spread err` of
the mean / std / IQR. `torch32` is the `g err` of PyTorch's own float32 run of the same weights
against the float64 reference: the size of a float32 error on this net; `PASS (~torch f32)`: g
misses `--tol` but its error is at most `--f32-factor` × that (the worst point is printed). Exit
status non-zero if a model misses `--tol` (the logit; g unless within the float32 factor) or
`--acf-tol` (autocorrelations and their spread, absolute).

Usage: resviz shatter --models plain-8,v1-8 --pairs 4 --dump DIR --json > /dev/null
       python tests/pytorch/check_shatter.py DIR
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
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import check_probe as cp  # noqa: E402


def build(d: Path, name: str, chw: tuple[int, int, int], dtype) -> nn.Module:
    """check_probe's reference module for `name`, with DIR/NAME.safetensors loaded strictly."""
    sd = load_file(str(d / f"{name}.safetensors"))
    net = cp.Net(name, *chw, sd["fc.weight"].shape[0], sd["stem.conv.weight"].shape[0],
                 cp.Dropout("engine"))
    net.load_state_dict(sd, strict=True)
    return net.to(dtype)


@torch.no_grad()
def precise_bn(net: nn.Module, bn: torch.Tensor, sizes: list[int]) -> None:
    """Running statistics as the cumulative average of the batches' statistics: batch k (from
    0) enters with momentum 1/(k+1), so the first replaces the stored statistics."""
    bns = [m for m in net.modules()
           if isinstance(m, nn.BatchNorm2d) and not isinstance(m, cp.OffBn)]
    if not bns or not sizes:
        return
    saved = [m.momentum for m in bns]
    net.train()
    at = 0
    for k, n in enumerate(sizes):
        for m in bns:
            m.momentum = 1.0 / (k + 1)
        cp.RELU.reset()
        net(bn[at:at + n])
        at += n
    for m, mom in zip(bns, saved):
        m.momentum = mom


def along_line(net: nn.Module, x0, x1, cls: int, points: int, chunk: int = 64):
    """(logit, g) at t = i/(points − 1), batch norm in evaluation mode."""
    net.eval()
    d = x1 - x0
    ts = torch.arange(points, dtype=x0.dtype) / (points - 1)
    logit, grad = [], []
    for s in range(0, points, chunk):
        t = ts[s:s + chunk].view(-1, 1, 1, 1)
        x = (x0.unsqueeze(0) + t * d.unsqueeze(0)).requires_grad_(True)
        cp.RELU.reset()
        out = net(x)[:, cls]
        (gx,) = torch.autograd.grad(out.sum(), x)
        logit += out.detach().tolist()
        grad += (gx * d.unsqueeze(0)).flatten(1).sum(1).tolist()
    return np.array(logit), np.array(grad)


def autocorrelation(g: np.ndarray, lags: int) -> np.ndarray:
    d = g - g.mean()
    c0 = (d * d).sum()
    return np.array([(d[:-l] * d[l:]).sum() / c0 if l < len(g) else 0.0
                     for l in range(1, lags + 1)])


def spread(v) -> tuple[float, float, float]:
    v = np.asarray([x for x in v if math.isfinite(x)])
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    std = v.std(ddof=1) if len(v) > 1 else math.nan
    return v.mean(), std, np.percentile(v, 75) - np.percentile(v, 25)


def family(model: str):
    head, _, knobs = model.partition(":")
    variant, _, depth = head.rpartition("-")
    if not depth.isdigit():
        return None
    return f"{variant}-L" + (f":{knobs}" if knobs else ""), int(depth)


def fits(means: dict[str, float]) -> dict[str, dict]:
    """Per family with ≥ 2 depths: the least-squares c and RMS residual of c·2^−L and c/√L."""
    fams: dict[str, list] = {}
    for model, y in means.items():
        f = family(model)
        if f and math.isfinite(y) and all(d != f[1] for d, _ in fams.get(f[0], [])):
            fams.setdefault(f[0], []).append((f[1], y))
    out = {}
    for fam, pts in fams.items():
        if len(pts) < 2:
            continue
        pts.sort()
        L = np.array([p[0] for p in pts], dtype=float)
        y = np.array([p[1] for p in pts])
        r = {}
        for law, f in (("exp2", 2.0 ** -L), ("inv_sqrt", 1 / np.sqrt(L))):
            c = (y * f).sum() / (f * f).sum()
            r[law] = (c, math.sqrt(((y - c * f) ** 2).mean()))
        out[fam] = r
    return out


def measure(net, inp, p, dtype):
    """The whole measurement on `net` (float `dtype`): first line's (logit, g), per pair lag-1,
    mean autocorrelation per lag."""
    x0, x1 = inp["x0"].to(dtype), inp["x1"].to(dtype)
    lines = [along_line(net, x0[k], x1[k], int(inp["class"][k]), p["points"])
             for k in range(x0.shape[0])]
    acfs = [autocorrelation(g, p["lags"]) for _, g in lines]
    return lines[0], [a[0] for a in acfs], np.mean(acfs, axis=0)


def max_rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", type=Path, help="directory written by `resviz shatter --dump DIR`")
    ap.add_argument("--tol", type=float, default=1e-3,
                    help="max error of g and the logit, relative to their largest value")
    ap.add_argument("--acf-tol", type=float, default=1e-3,
                    help="max absolute error of an autocorrelation (and the spread)")
    ap.add_argument("--f32-factor", type=float, default=3.0,
                    help="beyond --tol, g passes if its error is at most this × torch float32's "
                         "own error against the float64 reference (as check_probe.py)")
    ap.add_argument("--models", default="", help="comma-separated subset of the dump's models")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    report = json.loads((args.dump / "shatter.json").read_text())
    inp = load_file(str(args.dump / "inputs.safetensors"))
    chw = tuple(inp["x0"].shape[1:])
    sizes = inp["bn_sizes"].tolist()
    only = {s for s in args.models.split(",") if s}
    print(f"dump {args.dump}  pairs {inp['x0'].shape[0]}  points "
          f"{report['models'][0]['params']['points'] if report['models'] else '-'}  "
          f"bn batches {len(sizes)}  reference float64")
    hdr = (f"{'model':<18}{'lag-1 mean':>11}{'ref':>9}{'g err':>10}{'logit err':>10}"
           f"{'lag-1 err':>10}{'acf err':>9}{'spread err':>11}{'torch32':>9}  status")
    print(hdr)
    print("-" * len(hdr))
    failed, means = 0, {}
    for m in report["models"]:
        name, p = m["model"], m["params"]
        if only and name not in only:
            continue
        try:
            out = {}
            for dtype in (torch.float64, torch.float32):
                net = build(args.dump, name, chw, dtype)
                precise_bn(net, inp["bn"].to(dtype), sizes)
                out[dtype] = measure(net, inp, p, dtype)
        except Exception as e:  # noqa: BLE001 - report and carry on with the next model
            print(f"{name:<18}  FAIL: {type(e).__name__}: {e}")
            failed += 1
            continue
        (logit, g), lag1, acf = out[torch.float64]
        g32 = out[torch.float32][0][1]
        mean, std, iqr = spread(lag1)
        means[name] = mean
        g_err, logit_err = max_rel(m["grad"], g), max_rel(m["logit"], logit)
        lag1_err = float(np.max(np.abs(np.array(m["lag1_pairs"]) - lag1)))
        acf_err = float(np.max(np.abs(np.array(m["autocorr_mean"]) - acf)))
        spread_err = max(abs(m["lag1_mean"] - mean), abs(m["lag1_iqr"] - iqr),
                         abs(m["lag1_std"] - std) if len(lag1) > 1 else 0.0)
        t32 = max_rel(g32, g)
        worst = int(np.argmax(np.abs(np.array(m["grad"]) - g)))
        acf_ok = max(lag1_err, acf_err, spread_err) <= args.acf_tol
        status = "FAIL"
        if acf_ok and logit_err <= args.tol:
            if g_err <= args.tol:
                status = "PASS"
            elif g_err <= args.f32_factor * t32:
                status = "PASS (~torch f32)"
        failed += status == "FAIL"
        print(f"{name:<18}{m['lag1_mean']:>11.4f}{mean:>9.4f}{g_err:>10.1e}{logit_err:>10.1e}"
              f"{lag1_err:>10.1e}{acf_err:>9.1e}{spread_err:>11.1e}{t32:>9.0e}  {status}")
        if status != "PASS":
            print(f"    worst g at t = {worst / (p['points'] - 1):.4f}: resviz "
                  f"{m['grad'][worst]:.6e} reference {g[worst]:.6e} (max |g| "
                  f"{np.max(np.abs(g)):.3e})")
    ref_fits = fits(means)
    for f in report.get("fits", []):
        r = ref_fits.get(f["family"])
        if r is None:
            continue
        err = max(abs(f["exp2_rms"] - r["exp2"][1]), abs(f["inv_sqrt_rms"] - r["inv_sqrt"][1]),
                  abs(f["inv_sqrt_scale"] - r["inv_sqrt"][0]))
        print(f"fit {f['family']}: resviz RMS 2^-L {f['exp2_rms']:.4f} 1/sqrt(L) "
              f"{f['inv_sqrt_rms']:.4f}; reference {r['exp2'][1]:.4f} {r['inv_sqrt'][1]:.4f}; "
              f"max abs err {err:.1e}")
        if err > args.acf_tol:
            failed += 1
    print(f"{failed} check(s) failed" if failed else "all models passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
