"""Losses."""
from __future__ import annotations

from msprof.runtime import functional as F
from msprof.runtime.nn.cell import Cell


class SoftmaxCrossEntropyWithLogits(Cell):
    """Mean cross entropy of logits against integer class labels
    (MindSpore's ``sparse=True, reduction="mean"``)."""

    def __init__(self, sparse=True, reduction="mean"):
        super().__init__()
        if not sparse or reduction != "mean":
            raise ValueError("only sparse=True, reduction='mean' is implemented")

    def construct(self, logits, labels):
        loss, _ = F.softmax_cross_entropy(logits, labels)
        return loss
