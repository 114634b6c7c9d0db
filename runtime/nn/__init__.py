"""Networks: cells, layers, losses, optimizers and training wrappers."""
from msprof.runtime.nn.cell import Cell
from msprof.runtime.nn.layers import (AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU,
                                      SequentialCell)
from msprof.runtime.nn.loss import SoftmaxCrossEntropyWithLogits
from msprof.runtime.nn.optim import SGD, Adam, Momentum, Optimizer, cosine_decay
from msprof.runtime.nn.wrap import TrainOneStepCell, WithLossCell

__all__ = ["Cell", "Dense", "Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Flatten",
           "SequentialCell", "SoftmaxCrossEntropyWithLogits", "Optimizer", "SGD", "Momentum",
           "Adam", "cosine_decay", "WithLossCell", "TrainOneStepCell"]
