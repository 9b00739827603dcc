"""The watcher: hooks that measure a recorded step, and the step call that sends it.

Hook design (eq. 5 without re-running the model): a forward pre-hook on each block replaces its
input x by a view x' (no copy) whose gradient hook sees ∂L/∂x in full: autograd calls it once every
reader of x' has added its part. Forward pre-hooks on the block's branch entries (and shortcut
entries, if it has any) replace x' by a second view each; the gradient hook of such a view sees
only what that path passes back. The branch part is the sum over branch entries; the shortcut
part is the sum over shortcut entries, or ∂L/∂x − branch for an identity shortcut. A forward hook
on the block replaces its output by a view whose gradient hook gives the boundary's ‖∂L/∂x‖, and
measures the output's activation statistics. Hooks do nothing on steps that are not recorded
(`every`), in evaluation without gradients, and on ranks other than 0.
"""

from __future__ import annotations

import json
import math
import time
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from .blocks import Block, find_blocks
from .sink import Sink

STREAM_VERSION = 1


def _num(x) -> Optional[float]:
    """JSON has no NaN: a non-finite number is sent as null."""
    x = float(x)
    return x if math.isfinite(x) else None


def _act_stats(t: torch.Tensor) -> torch.Tensor:
    """mean, population std, exact-zero fraction, dead-channel fraction (channels, dim 1, zero
    for every example), as one tensor, so the step reads all of them with one sync."""
    a = t.detach()
    std, mean = torch.std_mean(a.float(), correction=0)
    nz = a != 0  # one byte an element, read twice instead of the floats
    zero = 1 - nz.sum() / max(a.numel(), 1)
    if a.dim() >= 2:
        dims = tuple(d for d in range(a.dim()) if d != 1)
        dead = (~nz.any(dim=dims)).float().mean()
    else:
        dead = torch.zeros((), device=a.device)
    return torch.stack([mean, std, zero, dead])


def _grad_stats(g: torch.Tensor) -> torch.Tensor:
    """‖g‖ and ‖g‖·√B/√(C·H·W), the RMS per element of one example's gradient."""
    n = g.float().norm()
    per_example = g.numel() // max(g.shape[0], 1) if g.dim() else 1
    b = g.shape[0] if g.dim() else 1
    return torch.stack([n, n * math.sqrt(b) / math.sqrt(max(per_example, 1))])


class _BlockState:
    """What one block's hooks measured this step (0-d or small tensors, read at `step`)."""

    def __init__(self, spec: Block):
        self.spec = spec
        self.x: Optional[torch.Tensor] = None  # the view handed to the block
        self.branch: Optional[torch.Tensor] = None
        self.shortcut: Optional[torch.Tensor] = None
        self.in_grad: Optional[torch.Tensor] = None  # [‖g‖, rms] at the input
        self.in_act: Optional[torch.Tensor] = None
        self.split: Optional[torch.Tensor] = None  # [‖s‖, ‖b‖, cos]
        self.out_grad: Optional[torch.Tensor] = None
        self.out_act: Optional[torch.Tensor] = None

    def clear(self) -> None:
        self.__init__(self.spec)


class Watcher:
    """Created by `watch`; call `step(loss, acc=None, lr=None)` after `loss.backward()`."""

    def __init__(self, model: nn.Module, out: str, name: Optional[str] = None, every: int = 1,
                 optimizer: Optional[torch.optim.Optimizer] = None,
                 blocks: Optional[List[Block]] = None, dataset: Optional[str] = None,
                 note: Optional[str] = None, sink: Optional[Sink] = None):
        if every < 1:
            raise ValueError("every must be at least 1")
        self.every = every
        self.steps = 0  # step() calls so far
        specs = blocks if blocks is not None else find_blocks(model)
        if not specs:
            raise ValueError("no residual blocks found: pass blocks=[resviz_torch.Block(...)] "
                             "(README: Watch your own PyTorch model)")
        self._blocks = [_BlockState(b) for b in specs]
        inner = model.module if hasattr(model, "module") and isinstance(
            getattr(model, "module"), nn.Module) else model
        self._params = [(n, p) for n, p in inner.named_parameters() if p.requires_grad]
        self._hooks = []
        self._pending: Optional[dict] = None
        self._before: Optional[List[torch.Tensor]] = None
        self._copy: Optional[List[torch.Tensor]] = None
        self._last_time: Optional[float] = None
        self._batch: Optional[int] = None
        self._sink = sink if sink is not None else Sink(out)
        for st in self._blocks:
            self._hook_block(st)
        if optimizer is not None:
            self._hooks.append(optimizer.register_step_pre_hook(self._before_update))
            self._hooks.append(optimizer.register_step_post_hook(self._after_update))
        self._optimizer = optimizer
        lr = None
        if optimizer is not None and optimizer.param_groups:
            lr = _num(optimizer.param_groups[0].get("lr", float("nan")))
        header = {
            "kind": "run", "version": STREAM_VERSION,
            "name": name or type(inner).__name__,
            "block_names": ["stem"] + [st.spec.name for st in self._blocks],
            "param_names": [n for n, _ in self._params],
            "num_params": sum(p.numel() for _, p in self._params),
            "writer": f"resviz_torch, torch {torch.__version__}",
            # ‖W‖ now, before any update this watcher sees: what `resviz` measures weight
            # growth ‖W_t‖/‖W_0‖ against (ARCHITECTURE.md, The stream format).
            "init_weight_norms": self._weight_norms(),
        }
        for key, value in (("dataset", dataset), ("lr", lr), ("note", note)):
            if value is not None:
                header[key] = value
        # Sent with the first step, when the batch size is known.
        self._header: Optional[dict] = header

    def _weight_norms(self) -> List[Optional[float]]:
        """‖W‖ of every watched parameter, one sync (null where not finite)."""
        if not self._params:
            return []
        with torch.no_grad():
            wn = torch.stack(torch._foreach_norm([p.detach() for _, p in self._params]))
        return [_num(w) for w in wn.float().cpu().tolist()]

    # ---------------------------------------------------------------- recording decision
    def _recording(self) -> bool:
        """Whether the step under way (the next `step` call) is recorded."""
        n = self.steps + 1
        return torch.is_grad_enabled() and (n == 1 or n % self.every == 0)

    # ---------------------------------------------------------------- hooks
    def _hook_block(self, st: _BlockState) -> None:
        spec = st.spec

        def pre(module, args):
            if not self._recording() or not args or not isinstance(args[0], torch.Tensor) \
                    or not args[0].requires_grad:
                return None
            x = args[0]
            st.clear()
            if self._batch is None and x.dim():
                self._batch = x.shape[0]
            st.in_act = _act_stats(x) if st is self._blocks[0] else None
            xv = x.view_as(x)
            st.x = xv
            xv.register_hook(lambda g, st=st: self._at_input(st, g))
            return (xv,) + tuple(args[1:])

        def post(module, args, out):
            if st.x is None or not isinstance(out, torch.Tensor) or not out.requires_grad:
                return None
            st.out_act = _act_stats(out)
            ov = out.view_as(out)

            def at_output(g, st=st):
                st.out_grad = _grad_stats(g)

            ov.register_hook(at_output)
            return ov

        self._hooks.append(spec.module.register_forward_pre_hook(pre))
        self._hooks.append(spec.module.register_forward_hook(post))
        if not spec.split:
            return
        for side in ("branch", "shortcut"):
            for entry in getattr(spec, side):
                self._hooks.append(entry.register_forward_pre_hook(self._tagger(st, side)))

    def _tagger(self, st: _BlockState, side: str):
        def tag(module, args):
            if st.x is None or not args or args[0] is not st.x:
                return None  # not the block's input (another call of a shared module)
            v = st.x.view_as(st.x)

            def on_grad(g):
                prev = getattr(st, side)
                setattr(st, side, g if prev is None else prev + g)

            v.register_hook(on_grad)
            return (v,) + tuple(args[1:])

        return tag

    def _at_input(self, st: _BlockState, g: torch.Tensor) -> None:
        st.in_grad = _grad_stats(g)
        spec = st.spec
        if not spec.split:
            st.split = None
        elif not spec.has_shortcut:
            st.split = torch.stack([torch.zeros((), device=g.device), st.in_grad[0],
                                    torch.zeros((), device=g.device)])
        else:
            b = st.branch if st.branch is not None else torch.zeros_like(g)
            s = st.shortcut if spec.shortcut else g - b
            if s is None:
                s = torch.zeros_like(g)
            s, b = s.float(), b.float()
            ns, nb = s.norm(), b.norm()
            cos = (s * b).sum() / (ns * nb).clamp_min(1e-30)
            st.split = torch.stack([ns, nb, cos])
        st.branch = st.shortcut = None
        st.x = None

    # ---------------------------------------------------------------- optimizer hooks
    def _before_update(self, optimizer, args, kwargs):
        if self._pending is None:
            return
        # One model-sized buffer, kept between recorded steps: a fresh copy each time pages its
        # memory in again. Measured on resnet18 (batch 64, one core, ~520 ms a step): the two
        # optimizer hooks took 76 ms with fresh copies, 31 ms with the kept buffer.
        with torch.no_grad():
            params = [p.detach() for _, p in self._params]
            if self._copy is None:
                self._copy = [p.clone() for p in params]
            else:
                torch._foreach_copy_(self._copy, params)
        self._before = self._copy

    def _after_update(self, optimizer, args, kwargs):
        if self._pending is None or self._before is None:
            return
        with torch.no_grad():
            new = [p.detach() for _, p in self._params]
            torch._foreach_sub_(self._before, new)  # the buffer now holds −ΔW
            dn = torch.stack(torch._foreach_norm(self._before)).float()
            wn = torch.stack(torch._foreach_norm(new)).float()
            # ‖ΔW‖/‖W‖ with ‖W‖ after the step (the same to the update's own size)
            ratios = (dn / wn.clamp_min(1e-30)).tolist()
            norms = wn.tolist()
        for p, r, w in zip(self._pending["params"], ratios, norms):
            p["update_ratio"] = _num(r)
            p["weight_norm"] = _num(w)
        self._before = None
        self._flush()

    # ---------------------------------------------------------------- step
    def step(self, loss, acc=None, lr=None) -> None:
        """Record this step (after `loss.backward()`, before `optimizer.step()`)."""
        try:
            self._step(loss, acc, lr)
        except Exception as e:  # noqa: BLE001 - never break the training loop
            self._sink._drop(1, f"measuring failed: {type(e).__name__}: {e}")

    def _step(self, loss, acc, lr) -> None:
        now = time.perf_counter()
        recorded = self._recording()
        self.steps += 1
        dt = None if self._last_time is None else now - self._last_time
        self._last_time = now
        self._flush()  # an earlier step whose optimizer step never came
        if not recorded:
            return
        blocks = self._blocks
        if any(st.in_grad is None or st.out_grad is None for st in blocks):
            for st in blocks:
                st.clear()
            return  # no backward through the blocks this step (or only a partial one)
        first = blocks[0]
        rows = [torch.cat([first.in_grad, first.in_act])]
        for st in blocks:
            split = st.split if st.split is not None else torch.full((3,), float("nan"),
                                                                    device=st.out_grad.device)
            rows.append(torch.cat([st.out_grad, st.out_act, split]))
        width = max(r.numel() for r in rows)
        table = torch.stack([torch.nn.functional.pad(r.float(), (0, width - r.numel()))
                             for r in rows]).cpu().tolist()
        names = ["stem"] + [st.spec.name for st in blocks]
        out = []
        for i, (name, row) in enumerate(zip(names, table)):
            b = {"name": name, "grad_norm": _num(row[0]), "grad_rms": _num(row[1]),
                 "act_mean": _num(row[2]), "act_std": _num(row[3]),
                 "act_zero_frac": _num(row[4]), "dead_frac": _num(row[5])}
            if i > 0 and blocks[i - 1].split is not None:
                b["grad_norm_shortcut"] = _num(row[6])
                b["grad_norm_branch"] = _num(row[7])
                b["cos"] = _num(row[8])
            out.append(b)
        for st in blocks:
            st.clear()
        grads = [p.grad for _, p in self._params]
        present = [g.detach() for g in grads if g is not None]
        norms = iter(torch.stack(torch._foreach_norm(present)).float().cpu().tolist()
                     if present else [])
        params = [{"grad_norm": _num(next(norms)) if g is not None else 0.0} for g in grads]
        if self._optimizer is None:
            for p, w in zip(params, self._weight_norms()):
                p["weight_norm"] = w
        if lr is None and self._optimizer is not None:
            lr = self._optimizer.param_groups[0].get("lr")
        rec = {"kind": "step", "step": self.steps, "loss": _num(_item(loss))}
        if acc is not None:
            rec["acc"] = _num(_item(acc))
        if lr is not None:
            rec["lr"] = _num(_item(lr))
        if dt is not None and self._batch and dt > 0:
            rec["img_per_s"] = self._batch / dt
        rec["blocks"] = out
        rec["params"] = params
        self._pending = rec
        if self._optimizer is None:
            self._flush()

    def _send_header(self) -> None:
        if self._header is not None:
            if self._batch:
                self._header["batch"] = self._batch
            self._sink.put(json.dumps(self._header, allow_nan=False))
            self._header = None

    def _flush(self) -> None:
        if self._pending is not None:
            self._send_header()
            rec, self._pending = self._pending, None
            self._before = None
            self._sink.put(json.dumps(rec, allow_nan=False))

    def close(self) -> None:
        """Send what is pending, remove the hooks and close the stream."""
        self._flush()
        self._send_header()
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self._sink.close()

    @property
    def dropped(self) -> int:
        """Stream lines lost (queue full, a dead connection)."""
        return self._sink.dropped

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _item(x) -> float:
    return x.detach().float().item() if isinstance(x, torch.Tensor) else float(x)


class _Idle:
    """The watcher of a rank other than 0: does nothing, holds nothing."""

    steps = 0
    dropped = 0

    def step(self, loss, acc=None, lr=None) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def watch(model: nn.Module, out: str, name: Optional[str] = None, every: int = 1,
          optimizer: Optional[torch.optim.Optimizer] = None, **kw):
    """Watch `model`, streaming to `out` (a path, or tcp://HOST:PORT where `resviz watch`
    listens). Under torch.distributed only rank 0 measures and streams (its local batch, said
    in the stream's note); the other ranks get a watcher that does nothing."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        if rank != 0:
            return _Idle()
        kw.setdefault("note", f"rank 0 of {world}: its local batch")
    return Watcher(model, out, name=name, every=every, optimizer=optimizer, **kw)
