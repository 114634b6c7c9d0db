"""Inference only: a LeNet-5 run forward over a few batches, with no loss,
no backward and no optimizer, so the profile has kernels but no training
step (what a serving or evaluation script records).

    python tests/e2e/scripts/inference_only.py [--batches 5]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from msprof.runtime import Model, nn, set_seed


class LeNet5(nn.Cell):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Dense(16 * 5 * 5, 120)
        self.fc2 = nn.Dense(120, 84)
        self.fc3 = nn.Dense(84, num_classes)
        self.relu = nn.ReLU()
        self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()

    def construct(self, x):
        x = self.max_pool2d(self.relu(self.conv1(x)))
        x = self.max_pool2d(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)
    set_seed(0)
    model = Model(LeNet5())                   # no loss_fn, no optimizer: predict only
    rng = np.random.default_rng(0)
    for _ in range(args.batches):
        x = rng.standard_normal((args.batch_size, 1, 32, 32)).astype(np.float32)
        print("predicted classes", model.predict(x).argmax(axis=1)[:4], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
