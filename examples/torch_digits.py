"""A plain PyTorch training script (no msprof import): an MLP on
scikit-learn's digits, with a DataLoader, an optimizer and a test accuracy.

    msprof run examples/torch_digits.py --epochs 3
    msprof run -n 2 examples/torch_digits.py --ddp       # torch.distributed, gloo

With --ddp it runs as one rank of a torch.distributed job (env:// as
torchrun sets it) and wraps the model in DistributedDataParallel.
"""
import argparse
import os

import torch
import torch.nn as nn
from sklearn.datasets import load_digits


class MLP(nn.Module):
    def __init__(self, hidden=256):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.head(self.encoder(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--ddp", action="store_true")
    ap.add_argument("--extra-work", type=int, default=0,
                    help="rank 1 computes this many more forward passes per step")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rank, world = 0, 1
    if args.ddp:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    n_train = 1400
    train = torch.utils.data.TensorDataset(x[:n_train][rank::world], y[:n_train][rank::world])
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch, shuffle=True)
    model = MLP(args.hidden)
    if args.ddp:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            if rank == 1:
                for _ in range(args.extra_work):
                    loss = loss + 0.0 * model(xb).sum()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(x[n_train:]).argmax(1) == y[n_train:]).float().mean().item()
    if rank == 0:
        print(f"test accuracy {acc:.3f}")
    if args.ddp:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
