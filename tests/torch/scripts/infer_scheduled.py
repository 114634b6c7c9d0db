"""An inference loop (no optimizer) profiled with torch.profiler's
schedule: the script calls prof.step() after every batch, as the PyTorch
docs show.  It knows nothing of msprof; --stats gets the batches run and
the operators torch.profiler's active window saw."""
import argparse
import json

import torch
import torch.nn as nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--stats", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    seen = {}

    def ready(prof):
        seen.update({e.key: e.count for e in prof.key_averages()})

    schedule = torch.profiler.schedule(wait=2, warmup=1, active=3, repeat=1)
    with torch.no_grad(), torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule,
            on_trace_ready=ready) as prof:
        for _ in range(args.batches):
            model(torch.randn(32, 64)).argmax(dim=1)
            prof.step()
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump({"batches": args.batches, "torch_profiler_ops": seen}, f)


if __name__ == "__main__":
    main()
