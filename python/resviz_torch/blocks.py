"""Which modules are residual blocks, and where their branch and shortcut read the input.

A `Block` names the block module and its *entries*: the submodules that read the block's input
on the branch side, and (optionally) on the shortcut side. The watcher tags the input each entry
receives, so autograd hands it the gradient through that path alone. With no shortcut entries
the shortcut part is the block input's whole gradient minus the branch part (an identity
shortcut has no module to tag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional

import torch.nn as nn


@dataclass
class Block:
    """A residual block: `module` computes branch(x) + shortcut(x) (then maybe a ReLU).

    - `branch`: submodules of `module` that read x on the branch side (e.g. `[block.conv1]`).
    - `shortcut`: submodules that read x on the shortcut side (`[block.downsample]`); empty for
      an identity shortcut.
    - `has_shortcut`: False for a plain block (no shortcut: its split is (0, ‖∂L/∂x‖)).
    - `split`: False where the parts cannot be taken apart by tagging inputs (the branch and
      the shortcut read one shared pre-activation): the block is still measured, without eq. 5.
    """

    name: str
    module: nn.Module
    branch: List[nn.Module] = field(default_factory=list)
    shortcut: List[nn.Module] = field(default_factory=list)
    has_shortcut: bool = True
    split: bool = True


def _torchvision_block(name: str, m: nn.Module) -> Optional[Block]:
    kind = type(m).__name__
    if kind not in ("BasicBlock", "Bottleneck") or not hasattr(m, "conv1"):
        return None
    down = getattr(m, "downsample", None)
    return Block(name, m, branch=[m.conv1], shortcut=[down] if down is not None else [])


def _reference_block(name: str, m: nn.Module) -> Optional[Block]:
    """tests/pytorch/check_probe.py's `Block` (resviz's model contract in PyTorch)."""
    if not hasattr(m, "sc_kind") or not hasattr(m, "conv1"):
        return None
    v = m.variant
    entries = []
    if v == "v2" and not m.skip_preact:
        entries.append(m.bn1)
    elif v == "reluonly" and not m.skip_preact:
        entries = []  # a ReLU function reads x first: no module to tag
    else:
        entries.append(m.conv1)
    if hasattr(m, "gate"):
        entries.append(m.gate)
    shortcut = [m.shortcut] if m.sc_kind == "proj" else []
    # A pre-activation projection reads the branch's own ReLU(BN x): shared, not separable.
    shared = v in ("v2", "reluonly") and m.sc_kind == "proj" and not m.seed_preset
    ok = bool(entries) and not shared
    return Block(name, m, branch=entries, shortcut=shortcut if ok else [],
                 has_shortcut=m.sc_kind != "none", split=ok)


#: Recognisers tried in order; `register` adds one for other block types.
RECOGNISERS: List[Callable[[str, nn.Module], Optional[Block]]] = [
    _torchvision_block,
    _reference_block,
]


def register(recogniser: Callable[[str, nn.Module], Optional[Block]]) -> None:
    """Recognise more block types: `recogniser(name, module)` returns a `Block` or None."""
    RECOGNISERS.insert(0, recogniser)


def find_blocks(model: nn.Module) -> List[Block]:
    """Every recognised block of `model`, in module order (outer blocks only: a block inside a
    block is not searched). Names are qualified module names (`layer1.0`), without the
    `module.` of a DistributedDataParallel wrapper."""
    found: List[Block] = []
    inside: List[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        for r in RECOGNISERS:
            b = r(_strip(name), m)
            if b is not None:
                found.append(b)
                inside.append(name)
                break
    return found


def _strip(name: str) -> str:
    return name[len("module."):] if name.startswith("module.") else name
