#!/usr/bin/env python3
"""What watching costs: resnet18 training steps on CPU (batch 64 of synthetic 3×32×32, SGD with
momentum, optimizer hooks on), watched with every=2, so that steps alternate between recorded
and not recorded (hooks installed but idle) on the same model and data. The median over pairs of
(recorded − idle) / idle is the cost of a recorded step, i.e. of every=1; every=N costs about
1/N of it. Pairs side by side cancel most of a shared machine's drift. `--plain` also times
steps without any watcher, to show that idle hooks cost nothing measurable.

    python overhead.py --pairs 20 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

import resviz_torch


def steps(n: int, batch: int, every, out) -> list:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    w = resviz_torch.watch(model, out, every=every, optimizer=opt) if every else None
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if w:
            w.step(loss)
        opt.step()
        times.append(time.perf_counter() - t)
    if w:
        w.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plain", action="store_true", help="also time steps without a watcher")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        # Step 1 is always recorded, then 2, 4, …: drop the first two as warm-up.
        t = steps(2 * args.pairs + 2, args.batch, 2, str(Path(d) / "s.jsonl"))[2:]
        idle, rec = t[0::2], t[1::2]
        cost = statistics.median((r - i) / i for i, r in zip(idle, rec))
        print(f"resnet18, batch {args.batch}, {args.threads} threads, torch {torch.__version__}: "
              f"idle step {1000 * statistics.median(idle):.0f} ms, recorded "
              f"{1000 * statistics.median(rec):.0f} ms ({args.pairs} pairs)")
        print(f"every=1: {100 * cost:+.1f} % per step; every=10: about {10 * cost:+.1f} %")
        if args.plain:
            plain = statistics.median(steps(args.pairs + 2, args.batch, None, None)[2:])
            print(f"no watcher: {1000 * plain:.0f} ms/step")


if __name__ == "__main__":
    main()
