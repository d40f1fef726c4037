#!/usr/bin/python3
"""One rank of the torchrun test: a DDP-wrapped Linear(1, 1) trained with Adam on synthetic data (y = 2x + 1), its
learning rate from an hpsched job through RemoteScheduler. Launched by test_torchrun_ddp.py as

    torchrun --nnodes=1 --nproc_per_node=3 --master_addr=127.0.0.1 --master_port=P ddp_worker.py \
        --target=127.0.0.1:PORT --job=JOB --steps=N --window=W --out_dir=DIR

Writes DIR/lr_rank{RANK}.json: {"rank", "world_size", "lrs" (the lr each optimizer step used), "losses",
"weights" (after training), "rpc_count"}.
"""
from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from hpsched import Client
from hpsched.torch import RemoteScheduler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # env:// from torchrun: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    rank, world_size = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(rank)  # different initial weights per rank: DDP broadcasts rank 0's
    model = DDP(nn.Linear(1, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)  # the job's lr replaces it
    with Client(args.target, timeout=30.0) as client:
        scheduler = RemoteScheduler(optimizer, args.job, client=client, window=args.window)
        data = torch.Generator().manual_seed(1000 + rank)  # each rank its own shard of the data
        lrs, losses = [], []
        for _ in range(args.steps):
            x = torch.rand(32, 1, generator=data) * 4 - 2
            y = 2 * x + 1 + 0.01 * torch.randn(32, 1, generator=data)
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        rpc_count = scheduler.rpc_count

    result = {"rank": rank, "world_size": world_size, "lrs": lrs, "losses": losses,
              "weights": [p.detach().flatten().tolist() for p in model.module.parameters()], "rpc_count": rpc_count}
    path = os.path.join(args.out_dir, f"lr_rank{rank}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
