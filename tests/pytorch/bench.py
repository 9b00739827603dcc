#!/usr/bin/env python3
"""Side-by-side training-step speed: `resviz bench` against PyTorch, in one run.

For every model (default v1-20, plain-56, v1-56, v2-56) this times a full PyTorch training step
— forward with BN in training mode, mean cross-entropy, backward, SGD with momentum and weight
decay — of the network ``check_probe.py`` builds from ARCHITECTURE.md's *model contract*, on a synthetic
batch of the same shape as `resviz bench`'s default dataset (3×32×32, 10 classes), with
``torch.set_num_threads(2)``; the median over ``--steps`` steps after ``--warmup`` untimed ones.
In the same run, interleaved per model (resviz, torch, resviz, torch, … for ``--rounds`` rounds)
so that load from other processes hits both alike, it runs
``target/release/resviz bench --models M --batch B --steps N --json``. The best round of each
side is kept (the least disturbed one), and the table shows the ratio of the two, and the median
over rounds of each round's own resviz/torch ratio (the two ran back to back).

Developer tool only: resviz itself does not depend on PyTorch, and CI does not run this.
See README.md here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_probe as cp  # noqa: E402  (the reference models, built from ARCHITECTURE.md)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS = "v1-20,plain-56,v1-56,v2-56"


def fast_forward(self, x):
    """`check_probe.Net.forward` without the `retain_grad()` bookkeeping of the probe check."""
    h = self.stem(x)
    for blocks in self.stages:
        for block in blocks:
            h = block(h)
    h = self.head(h)
    feats = torch.flatten(h, 1) if self.seed else h.mean(dim=(2, 3))
    return self.fc(feats)


def torch_net(spec: str, args) -> torch.nn.Module:
    # check_probe's ReLU tracks ties for its accuracy check; a training step uses torch's own.
    cp.relu = F.relu
    net = cp.Net(spec, 3, 32, 32, 10, args.width, cp.Dropout("torch"))
    net.forward = fast_forward.__get__(net)
    return net.train()


def time_torch(spec: str, args) -> float:
    """Median seconds of one training step over `args.steps` after `args.warmup` steps."""
    torch.manual_seed(args.seed)
    net = torch_net(spec, args)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    secs = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if i >= args.warmup:
            secs.append(time.perf_counter() - t0)
    return statistics.median(secs)


def run_resviz(spec: str, args) -> dict:
    cmd = [str(args.resviz), "bench", "--models", spec, "--batch", str(args.batch),
           "--steps", str(args.steps), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["models"][0]


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per measurement (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed PyTorch steps first")
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved resviz/torch measurements per model; the best is kept")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resviz", type=Path, default=ROOT / "target/release/resviz",
                    help="the resviz binary (build it with `cargo build --release`)")
    ap.add_argument("--no-resviz", action="store_true", help="time PyTorch alone")
    ap.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.no_resviz and not args.resviz.exists():
        print(f"error: {args.resviz} not found; run `cargo build --release`", file=sys.stderr)
        return 2

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, batch {args.batch}, median of {args.steps} steps, "
          f"best of {args.rounds} interleaved rounds; load average before: {load()}",
          file=sys.stderr)
    rows = []
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        rz, pt = [], []
        for _ in range(args.rounds):
            if not args.no_resviz:
                rz.append(run_resviz(spec, args))
            pt.append(args.batch / time_torch(spec, args))
        row = {"model": spec, "batch": args.batch, "torch_img_per_s": max(pt)}
        if rz:
            best = max(rz, key=lambda r: r["img_per_s"])
            row.update(resviz_img_per_s=best["img_per_s"],
                       ratio=best["img_per_s"] / row["torch_img_per_s"],
                       # the statistics' cost: median of the rounds' (each a median of pairs)
                       stats_overhead_pct=statistics.median(r["stats_overhead_pct"] for r in rz),
                       peak_rss_mb=max(r["peak_rss_mb"] for r in rz),
                       # each round's resviz/torch pair ran back to back: the median of the
                       # paired ratios is less sensitive to a slow spell than best-of-each
                       paired_ratio=statistics.median(
                           r["img_per_s"] / t for r, t in zip(rz, pt)),
                       resviz_rounds=[round(r["img_per_s"], 1) for r in rz],
                       stats_rounds=[round(r["stats_overhead_pct"], 1) for r in rz])
        row["torch_rounds"] = [round(v, 1) for v in pt]
        rows.append(row)
        print(f"  {spec}: resviz {row.get('resviz_rounds', '-')} img/s "
              f"(stats {row.get('stats_rounds', '-')} %), torch {row['torch_rounds']} img/s",
              file=sys.stderr)

    print(f"load average after: {load()}", file=sys.stderr)
    print("| model | resviz img/s | PyTorch img/s | ratio | paired ratio | resviz stats % "
          "| resviz peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "resviz_img_per_s" in r:
            print(f"| {r['model']} | {r['resviz_img_per_s']:.1f} | {r['torch_img_per_s']:.1f} | "
                  f"{r['ratio']:.2f} | {r['paired_ratio']:.2f} | "
                  f"{r['stats_overhead_pct']:+.1f} | {r['peak_rss_mb']:.0f} |")
        else:
            print(f"| {r['model']} | - | {r['torch_img_per_s']:.1f} | - | - | - | - |")
    if args.json:
        print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
