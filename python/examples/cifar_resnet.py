#!/usr/bin/env python3
"""Train a torchvision ResNet on CIFAR-10 (or synthetic data) and stream it to resviz.

    resviz watch tcp://127.0.0.1:7000 &        # or: resviz watch run.jsonl (after starting this)
    python cifar_resnet.py --out tcp://127.0.0.1:7000
    python cifar_resnet.py --out run.jsonl --steps 200            # synthetic data, one process
    torchrun --nproc_per_node 2 cifar_resnet.py --out run.jsonl   # gloo on CPU, rank 0 streams

Synthetic data (the default) needs nothing downloaded; --data DIR reads CIFAR-10 with
torchvision (download=False: the python version of the dataset must be in DIR).
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision

import resviz_torch


def batches(args, rank: int, world: int):
    if args.data:
        tf = torchvision.transforms
        ds = torchvision.datasets.CIFAR10(args.data, train=True, download=False,
                                          transform=tf.Compose([tf.ToTensor()]))
        sampler = torch.utils.data.DistributedSampler(ds, world, rank) if world > 1 else None
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, sampler=sampler,
                                             shuffle=sampler is None, drop_last=True)
        while True:
            yield from loader
    g = torch.Generator().manual_seed(args.seed + rank)
    # Ten fixed class means plus noise: a learnable synthetic CIFAR.
    means = torch.randn(10, 3, 32, 32, generator=torch.Generator().manual_seed(args.seed))
    while True:
        y = torch.randint(0, 10, (args.batch,), generator=g)
        yield means[y] + 0.5 * torch.randn(args.batch, 3, 32, 32, generator=g), y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="run.jsonl", help="a path or tcp://HOST:PORT")
    ap.add_argument("--model", default="resnet18", help="a torchvision ResNet (resnet18, 50 …)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64, help="per process")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--every", type=int, default=1, help="record every N steps")
    ap.add_argument("--data", default=None, help="CIFAR-10 directory (default: synthetic)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.model)(num_classes=10)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    watcher = resviz_torch.watch(model, args.out, name=args.model, every=args.every,
                                 optimizer=opt, dataset="cifar10" if args.data else "synthetic")
    data = batches(args, rank, world)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = next(data)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        watcher.step(loss, acc=(logits.argmax(1) == y).float().mean())
        opt.step()
        if rank == 0 and (step % 10 == 0 or step == args.steps):
            print(f"step {step} loss {loss.item():.3f} "
                  f"({args.batch * world * step / (time.perf_counter() - start):.0f} img/s)",
                  flush=True)
    watcher.close()
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
