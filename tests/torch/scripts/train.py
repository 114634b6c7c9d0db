"""A plain PyTorch training script for the PyTorch adapter's tests: it
knows nothing of msprof.  An MLP on scikit-learn's digits, a DataLoader,
SGD; what the tests compare against is written to --stats (JSON):
optimizer steps, DDP's bucket sizes, the bytes kept alive per step, and,
with --torch-profiler, torch.profiler's own key_averages() of the same
steps with the window's CLOCK_MONOTONIC bounds.

Causes a user creates, with the script's own code:
  --extra-work N   rank 1 runs N more forward passes per step (a slow rank)
  --rank1-batch B  rank 1 trains on batches of B samples, the others on
                   --batch (a slow rank: a bigger shard of the data)
  --keep-bytes B   every step keeps a B-byte tensor alive (memory growth)
  --kill-at-step S the process SIGKILLs itself at step S
"""
import argparse
import json
import os
import signal
import time

import torch
import torch.nn as nn
from sklearn.datasets import load_digits


class MLP(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.head(self.encoder(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--ddp", action="store_true")
    ap.add_argument("--extra-work", type=int, default=0)
    ap.add_argument("--rank1-batch", type=int, default=0)
    ap.add_argument("--keep-bytes", type=int, default=0)
    ap.add_argument("--kill-at-step", type=int, default=-1)
    ap.add_argument("--torch-profiler", action="store_true")
    ap.add_argument("--stats", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rank, world = 0, 1
    if args.ddp:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    x, y = load_digits(return_X_y=True)
    data = torch.utils.data.TensorDataset(torch.tensor(x / 16.0, dtype=torch.float32),
                                          torch.tensor(y))
    # Whole batches indexed at once (one aten::index per batch, not one
    # select per sample): the step's time is the model's, not the collate's.
    batch = args.rank1_batch if rank == 1 and args.rank1_batch else args.batch
    batches = torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(data),
                                            batch, drop_last=True)
    loader = torch.utils.data.DataLoader(data, sampler=batches, batch_size=None)
    model = MLP(args.hidden)
    if args.ddp:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    kept = []
    stats = {"rank": rank, "optimizer_steps": 0}
    prof = None
    if args.torch_profiler:
        prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        prof.__enter__()
        stats["window_ns"] = [time.monotonic_ns()]
    step = 0
    while step < args.steps:
        for xb, yb in loader:
            if step == args.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            if rank == 1:
                for _ in range(args.extra_work):
                    loss = loss + 0.0 * model(xb).sum()
            loss.backward()
            if args.keep_bytes:
                kept.append(torch.ones(args.keep_bytes // 4, dtype=torch.float32))
            opt.step()
            stats["optimizer_steps"] += 1
            step += 1
            if step == args.steps:
                break
    if prof is not None:
        stats["window_ns"].append(time.monotonic_ns())
        prof.__exit__(None, None, None)
        stats["key_averages"] = {e.key: {"self_us": e.self_cpu_time_total, "count": e.count}
                                 for e in prof.key_averages()}
        calls = {}
        for e in sorted(prof.events(), key=lambda e: e.time_range.start):
            calls.setdefault(e.key, []).append(e.self_cpu_time_total)
        stats["calls_self_us"] = calls
    stats["kept_bytes"] = sum(t.numel() * 4 for t in kept)
    stats["param_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())
    if args.ddp:
        stats["bucket_sizes"] = [int(b) for b in
                                 model._get_ddp_logging_data()["bucket_sizes"].split(",")]
        torch.distributed.destroy_process_group()
    if args.stats:
        with open(f"{args.stats}.{rank}.json", "w") as f:
            json.dump(stats, f)


if __name__ == "__main__":
    main()
