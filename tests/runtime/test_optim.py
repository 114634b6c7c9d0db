"""Optimizer update ops against numpy references, and a whole model's training."""
from __future__ import annotations

import numpy as np
import pytest

from msprof.runtime import Model, NumpyDataset, nn
from msprof.runtime.tensor import Parameter


class Updater(nn.Cell):
    """A graph whose only ops are the optimizer's updates for fed gradients."""

    def __init__(self, opt):
        super().__init__()
        self.optimizer = opt

    def construct(self, *grads):
        self.optimizer(list(grads))
        return grads[0]


def run_updates(opt_cls, grads, **kw):
    params = [Parameter(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), name="w"),
              Parameter(np.array([0.5, -0.5], np.float32), name="b")]
    start = [p.data.copy() for p in params]
    cell = Updater(opt_cls(params, **kw))
    for g in grads:
        cell(*g)
    return start, [p.data.copy() for p in params], cell


def grad_steps(n=3, seed=0):
    r = np.random.default_rng(seed)
    return [(r.standard_normal((2, 3)).astype(np.float32),
             r.standard_normal(2).astype(np.float32)) for _ in range(n)]


def test_sgd(inline):
    grads = grad_steps()
    start, end, _ = run_updates(nn.SGD, grads, learning_rate=0.1)
    for i in range(2):
        ref = start[i] - 0.1 * sum(g[i] for g in grads)
        np.testing.assert_allclose(end[i], ref, rtol=1e-6)


def test_momentum(inline):
    grads = grad_steps()
    start, end, cell = run_updates(nn.Momentum, grads, learning_rate=0.1, momentum=0.9)
    for i in range(2):
        var, acc = start[i].copy(), np.zeros_like(start[i])
        for g in grads:
            acc = 0.9 * acc + g[i]
            var = var - 0.1 * acc
        np.testing.assert_allclose(end[i], var, rtol=1e-5)
        np.testing.assert_allclose(cell.optimizer.moments[i].data, acc, rtol=1e-5)


def test_adam(inline):
    grads = grad_steps(5)
    start, end, _ = run_updates(nn.Adam, grads, learning_rate=0.01)
    for i in range(2):
        var, m, v = start[i].astype(np.float64), 0.0, 0.0
        for t, g in enumerate(grads, 1):
            m = 0.9 * m + 0.1 * g[i]
            v = 0.999 * v + 0.001 * g[i] ** 2
            var = var - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        np.testing.assert_allclose(end[i], var, rtol=1e-4, atol=1e-6)


def test_optimizer_needs_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        nn.SGD([], 0.1)


@pytest.mark.parametrize("opt", ["SGD", "Momentum", "Adam"])
def test_model_trains_a_small_mlp(opt):
    r = np.random.default_rng(0)
    x = r.standard_normal((256, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)

    class MLP(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.relu = nn.Dense(4, 16), nn.Dense(16, 2), nn.ReLU()

        def construct(self, x):
            return self.fc2(self.relu(self.fc1(x)))

    net = MLP()
    lr = {"SGD": 0.2, "Momentum": 0.05, "Adam": 0.02}[opt]
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(),
                  getattr(nn, opt)(net.trainable_params(), lr), metrics={"accuracy"})
    ds = NumpyDataset(x, y, 32, shuffle=True, drop_remainder=True)
    history = model.train(10, ds)
    assert history[-1] < 0.5 * history[0]
    assert model.eval(NumpyDataset(x, y, 100))["accuracy"] > 0.9


def test_learning_rate_schedule_is_applied_per_step(inline):
    w = Parameter(np.zeros(3, np.float32), name="w")
    rates = [0.5, 0.25, 0.125]
    opt = nn.SGD([w], learning_rate=lambda step: rates[step])

    class Step(nn.TrainOneStepCell):
        pass

    class Linear(nn.Cell):
        """loss-free: the 'network' returns w so its gradient is the sens (ones)."""

        def __init__(self):
            super().__init__()
            self.w = w

        def construct(self, x):
            from msprof.runtime import functional as F
            return F.add(self.w, x)

    train = Step(Linear(), opt)
    for _ in rates:
        train(np.zeros(3, np.float32))
    np.testing.assert_allclose(w.data, -np.cumsum(rates)[-1] * np.ones(3))
    assert float(opt.learning_rate.data) == 0.125


def test_cosine_decay():
    rate = nn.cosine_decay(0.1, 100)
    assert rate(0) == pytest.approx(0.1) and rate(50) == pytest.approx(0.05)
    assert rate(100) == pytest.approx(0.0) and rate(1000) == pytest.approx(0.0)
