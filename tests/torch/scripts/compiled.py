"""A training loop with what PyTorch users write beyond plain modules: a
custom autograd.Function and a torch.compile'd model (whose compiled
graph runs as an autograd.Function too).  Both ask the profiler state,
at every call, whether a profiler wants input shapes; the script asks too
(as libraries do before they open record_function scopes), and notes what
it was told.

    python compiled.py --steps N --stats FILE
    # FILE: {"optimizer_steps", "loss", "profiler_enabled", "profiler_type"}
"""
import argparse
import json

import torch
from torch import nn


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--stats", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    w = torch.randn(32, requires_grad=True)       # a learned scale, through the function
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    compiled = torch.compile(model)
    opt = torch.optim.SGD([*model.parameters(), w], lr=0.01)
    x, y = torch.randn(16, 32), torch.randint(0, 4, (16,))
    for _ in range(args.steps):
        opt.zero_grad()
        out = compiled(x * Square.apply(w))
        loss = nn.functional.cross_entropy(out, y)
        loss.backward()
        opt.step()
    with open(args.stats, "w") as f:
        json.dump({"optimizer_steps": args.steps, "loss": loss.item(),
                   "profiler_enabled": torch._C._autograd._profiler_enabled(),
                   "profiler_type": str(torch._C._autograd._profiler_type())}, f)


if __name__ == "__main__":
    main()
