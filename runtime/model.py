"""Model: the high-level train / eval loop over a network, as in MindSpore.

    model = Model(net, loss_fn, optimizer, metrics={"accuracy"})
    model.train(epochs, train_ds)          # one compiled training graph
    model.eval(test_ds)                    # {"accuracy": ..., "loss": ...}

Training batches must share one shape (use drop_remainder=True), since a
new shape means a new graph; evaluation compiles one graph per batch shape.
"""
from __future__ import annotations

import time

import numpy as np

from msprof.runtime.nn.loss import SoftmaxCrossEntropyWithLogits
from msprof.runtime.nn.wrap import TrainOneStepCell, WithLossCell
from msprof.runtime.tensor import as_array


class Model:
    def __init__(self, network, loss_fn=None, optimizer=None, metrics=None):
        self.network, self.loss_fn, self.optimizer = network, loss_fn, optimizer
        self.metrics = set(metrics or ())
        self.train_network = (TrainOneStepCell(WithLossCell(network, loss_fn), optimizer)
                              if loss_fn is not None and optimizer is not None else None)
        self.step_times: list[float] = []      # seconds per training step

    def train(self, epoch, train_dataset, callbacks=(), max_steps=None):
        """Train; each callback is called as cb(epoch, mean_loss) after an
        epoch.  Stops early after ``max_steps`` steps.  Returns the mean loss
        of every epoch."""
        if self.train_network is None:
            raise ValueError("Model needs a loss_fn and an optimizer to train")
        history = []
        for e in range(epoch):
            losses = []
            for data, label in train_dataset:
                if max_steps is not None and self.train_network.step >= max_steps:
                    break
                t = time.perf_counter()
                loss = self.train_network(data, label)
                self.step_times.append(time.perf_counter() - t)
                losses.append(float(loss.asnumpy()))
            if not losses:
                break
            history.append(float(np.mean(losses)))
            for cb in callbacks:
                cb(e, history[-1])
        return history

    def predict(self, data) -> np.ndarray:
        return self.network(data).asnumpy()

    def eval(self, dataset) -> dict:
        correct = total = 0
        loss_sum = 0.0
        for data, label in dataset:
            logits = self.predict(data)
            label = as_array(label)
            correct += int((logits.argmax(axis=1) == label).sum())
            total += len(label)
            if isinstance(self.loss_fn, SoftmaxCrossEntropyWithLogits):
                z = logits - logits.max(axis=1, keepdims=True)
                logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
                loss_sum -= float(logp[np.arange(len(label)), label].sum())
        out = {"accuracy": correct / max(total, 1)}
        if isinstance(self.loss_fn, SoftmaxCrossEntropyWithLogits):
            out["loss"] = loss_sum / max(total, 1)
        return out
