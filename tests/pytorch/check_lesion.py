#!/usr/bin/env python3
"""Check `resviz lesion --dump DIR` (Veit, Wilber, Belongie 2016) against an independent PyTorch run.

For every model of DIR/lesion.json this script rebuilds the net with check_probe.py's reference
modules, loads DIR/MODEL.safetensors (the trained weights, before batch-norm re-estimation),
re-estimates the running statistics on the dumped training batches (cumulative average, as
check_shatter.py), and in evaluation mode, float64, takes the test accuracy on the dumped images
intact and with each block deleted. Deleting a block leaves its shortcut path alone, with nothing
after the addition (README, lesion): the identity, option A's padding, or the projection (for
pre-activation designs, on the block's pre-activated input, which the projection reads); a plain
block is deletable only where it keeps its input's shape (the identity then), else "-".

Accuracies are counts over the images, so they agree exactly unless an image's two largest
logits are within float32 rounding of each other. The script reports the number of images whose
prediction differs (`flips`) and, for each, the reference's margin between its two largest
logits; a flip with a margin above --margin (default 1e-4 of the logits' scale) fails.

Usage: resviz lesion --models v1-8,v2-8,plain-8 --dataset synthetic --steps 30 --test-images 256 \\
           --dump DIR --json > /dev/null
       python tests/pytorch/check_lesion.py DIR
Developer tool only (resviz does not depend on PyTorch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import check_probe as cp  # noqa: E402
from check_shatter import build, precise_bn  # noqa: E402


def shortcut_only(block: cp.Block, x: torch.Tensor):
    """The block deleted: its shortcut path alone, or None where a plain block changes shape."""
    if block.sc_kind == "none":
        keeps = block.stride == 1 and block.conv1.in_channels == block.conv2.out_channels
        return x if keeps else None
    if block.sc_kind == "identity":
        return x
    if block.sc_kind == "pad":
        return cp.pad_shortcut(x, block.cout, block.stride)
    if block.variant == "v2":
        a = x if block.skip_preact else cp.relu(block.bn1(x))
    elif block.variant == "reluonly":
        a = x if block.skip_preact else cp.relu(x)
    else:
        a = x
    return block._shortcut(x, a)


@torch.no_grad()
def logits(net: cp.Net, x: torch.Tensor, deleted: int | None, chunk: int = 256):
    """Evaluation-mode logits with block `deleted` (flat index) replaced by its shortcut."""
    net.eval()
    out = []
    for s in range(0, x.shape[0], chunk):
        cp.RELU.reset()
        h = net.stem(x[s:s + chunk])
        i = 0
        for blocks in net.stages:
            for b in blocks:
                h = shortcut_only(b, h) if i == deleted else b(h)
                if h is None:
                    return None
                i += 1
        h = net.head(h)
        feats = torch.flatten(h, 1) if net.seed else h.mean(dim=(2, 3))
        out.append(net.fc(feats))
    return torch.cat(out)


def accuracy(lg: torch.Tensor, y: torch.Tensor) -> float:
    return (lg.argmax(1) == y).double().mean().item()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", type=Path, help="directory written by `resviz lesion --dump DIR`")
    ap.add_argument("--margin", type=float, default=1e-4,
                    help="a differing prediction fails if the reference's top-two margin is "
                         "above this × the largest |logit|")
    ap.add_argument("--models", default="", help="comma-separated subset of the dump's models")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    study = json.loads((args.dump / "lesion.json").read_text())
    inp = load_file(str(args.dump / "inputs.safetensors"))
    x, y = inp["x"].double(), inp["y"]
    only = {s for s in args.models.split(",") if s}
    print(f"dump {args.dump}  test images {x.shape[0]}  bn batches {len(inp['bn_sizes'])}  "
          f"reference float64")
    hdr = f"{'model':<14}{'intact':>9}{'ref':>9}{'blocks':>7}{'max |Δacc|':>11}{'flips':>7}" \
          f"{'max margin':>11}  status"
    print(hdr)
    print("-" * len(hdr))
    failed = 0
    for m in study.get("report", study)["models"]:  # the report is flattened into the study
        name = m["model"]
        if only and name not in only:
            continue
        try:
            net = build(args.dump, name, tuple(x.shape[1:]), torch.float64)
            precise_bn(net, inp["bn"].double(), inp["bn_sizes"].tolist())
            worst, flips, margin, ok = 0.0, 0, 0.0, True
            cases = [(None, m["accuracy"])] + [(i, b["accuracy"]) for i, b in
                                               enumerate(m["blocks"])]
            ref_intact = None
            for deleted, acc in cases:
                lg = logits(net, x, deleted)
                if lg is None or acc is None:
                    ok = ok and lg is None and acc is None  # both say "cannot be deleted"
                    continue
                ref = accuracy(lg, y)
                ref_intact = ref if deleted is None else ref_intact
                worst = max(worst, abs(acc - ref))
                n_diff = round(abs(acc - ref) * x.shape[0])
                if n_diff:
                    # Only images near a tie may differ: the smallest top-two margins bound it.
                    top = lg.topk(2, dim=1).values
                    gap = (top[:, 0] - top[:, 1]) / lg.abs().max()
                    near = gap.sort().values[n_diff - 1].item()
                    flips += n_diff
                    margin = max(margin, near)
                    ok = ok and near <= args.margin
            status = "PASS" if ok else "FAIL"
        except Exception as e:  # noqa: BLE001 - report and carry on with the next model
            print(f"{name:<14}  FAIL: {type(e).__name__}: {e}")
            failed += 1
            continue
        failed += not ok
        print(f"{name:<14}{m['accuracy']:>9.4f}{ref_intact:>9.4f}{len(m['blocks']):>7}"
              f"{worst:>11.1e}{flips:>7}{margin:>11.1e}  {status}")
    print(f"{failed} model(s) failed" if failed else "all models passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
