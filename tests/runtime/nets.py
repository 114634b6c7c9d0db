"""Small networks shared by the runtime tests."""
from __future__ import annotations

import numpy as np

from msprof.runtime import nn


class LeNet5(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Dense(400, 120)
        self.fc2 = nn.Dense(120, 84)
        self.fc3 = nn.Dense(84, 10)
        self.relu = nn.ReLU()
        self.max_pool2d = nn.MaxPool2d(2, 2)
        self.flatten = nn.Flatten()

    def construct(self, x):
        x = self.max_pool2d(self.relu(self.conv1(x)))
        x = self.max_pool2d(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def lenet_train_cell(lr=0.01):
    net = LeNet5()
    opt = nn.Momentum(net.trainable_params(), lr, 0.9)
    return net, nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits()), opt)


def lenet_batch(n=8, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 1, 32, 32)).astype(np.float32), r.integers(0, 10, n).astype(np.int32)
