"""One rank of test_watch.py's torchrun test: a v1-8 reference module under DDP, each rank seeded
differently before the wrap (DDP broadcasts rank 0's weights), watched for two SGD steps.
Each rank writes its ‖W‖ per parameter after the wrap to OUT/normsRANK.json."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tests" / "pytorch"))
import check_probe as cp  # noqa: E402
import resviz_torch  # noqa: E402

out = Path(sys.argv[1])
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(rank)
net = cp.Net("v1-8", 3, 16, 16, 10, 4, cp.Dropout("engine")).train()
ddp = nn.parallel.DistributedDataParallel(net)
opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
norms = [p.detach().norm().item() for p in net.parameters()]
w = resviz_torch.watch(ddp, str(out / f"rank{rank}.jsonl"), optimizer=opt, name="v1-8")
for _ in range(2):
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    loss = F.cross_entropy(ddp(x), y)
    opt.zero_grad()
    loss.backward()
    w.step(loss)
    opt.step()
w.close()
(out / f"norms{rank}.json").write_text(json.dumps(norms))
dist.destroy_process_group()
