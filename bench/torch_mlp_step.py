"""The PyTorch model bench/torch_overhead.py times: an MLP 784-512-512-10,
batch 64, one thread, SGD on random data; prints its median step.

    python bench/torch_mlp_step.py [--steps 300] [--torch-profiler]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--torch-profiler", action="store_true",
                    help="run under torch.profiler (CPU activities, default options)")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    prof = None
    if a.torch_profiler:
        prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        prof.__enter__()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    if prof is not None:
        prof.__exit__(None, None, None)
    warm = times[a.steps // 10:]
    print(f"{statistics.mean(warm) * 1e3:.4f} ms/step (median {statistics.median(warm) * 1e3:.4f})")


if __name__ == "__main__":
    main()
