"""Stream a PyTorch model's training statistics to resviz.

    watcher = resviz_torch.watch(model, "run.jsonl", optimizer=opt)   # or "tcp://127.0.0.1:7000"
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward()
        watcher.step(loss, acc=(logits.argmax(1) == y).float().mean())
        opt.step()

Per residual block and recorded step: ‖∂L/∂x‖ and its RMS at the block boundaries, He et al.
2016 eq. 5 (the block input's gradient through the shortcut and through the branch, and their
cosine), activation mean / std / zero fraction / dead channels of the block output; per
parameter the gradient norm, ‖W‖ and (given the optimizer) ‖ΔW‖/‖W‖. The format is resviz's
stream format (ARCHITECTURE.md), read by `resviz watch` and `resviz import`.
"""

from .blocks import Block, find_blocks
from .watcher import Watcher, watch

__all__ = ["Block", "Watcher", "find_blocks", "watch"]
__version__ = "0.1.0"
