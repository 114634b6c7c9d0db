"""Minibatches from in-memory arrays (what MindSpore's NumpySlicesDataset
plus batch() does): optional shuffling per epoch from a seed."""
from __future__ import annotations

import numpy as np


class NumpyDataset:
    def __init__(self, data, labels, batch_size, shuffle=False, seed=0, drop_remainder=False):
        if len(data) != len(labels):
            raise ValueError(f"{len(data)} samples but {len(labels)} labels")
        self.data, self.labels = data, labels
        self.batch_size, self.shuffle, self.drop_remainder = batch_size, shuffle, drop_remainder
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        n, b = len(self.data), self.batch_size
        return n // b if self.drop_remainder else -(-n // b)

    def __iter__(self):
        order = self._rng.permutation(len(self.data)) if self.shuffle else None
        for i in range(len(self)):
            idx = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is not None:
                idx = order[idx]
            yield self.data[idx], self.labels[idx]


class ShardedBatches:
    """This rank's contiguous share of each global batch (data parallel):
    shard ``shard_id`` of ``num_shards`` gets rows [i*b/n, (i+1)*b/n).  Built
    on the global batches, so shuffles and augmentations draw the same on
    every rank and N ranks see exactly the one-rank run's batches."""

    def __init__(self, dataset, num_shards: int, shard_id: int):
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard {shard_id} of {num_shards}")
        self.dataset, self.num_shards, self.shard_id = dataset, num_shards, shard_id

    def __len__(self):
        return len(self.dataset)

    def __iter__(self):
        n, i = self.num_shards, self.shard_id
        for x, y in self.dataset:
            if len(x) % n:
                raise ValueError(f"a batch of {len(x)} does not split over {n} ranks")
            b = len(x) // n
            yield x[i * b:(i + 1) * b], y[i * b:(i + 1) * b]
