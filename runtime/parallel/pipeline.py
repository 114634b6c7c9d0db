"""Pipeline parallel: stages per Cell, micro-batches, a GPipe schedule.

The network is a SequentialCell whose sub-cells carry ``pipeline_stage``
(cells without one are spread evenly); rank s holds stage s.  Each rank
compiles three graphs of its stage:

* forward (F): receive the micro-batch's activation from stage s-1 (stage 0
  takes the data), run the stage, send the result to stage s+1 (the last
  stage runs its layers too and keeps nothing, as every stage);
* backward (B): run the stage again on the stashed input (GPipe's
  re-materialisation: no activation is kept between F and B), receive d out
  from stage s+1 (the last stage computes its loss instead), accumulate the
  parameters' gradients, send d in to stage s-1;
* update (U): the optimizer on the accumulated gradients, which it then
  zeroes, and the mean loss broadcast from the last stage.

A step is F for every micro-batch, then B for every micro-batch, then U
(GPipe with re-materialisation on every stage: each stage's F and B cost
what they cost on the others, so with equal stages the bubble is
(S - 1) / (M + S - 1) of the step).  Sends and receives are graph ops on the comm stream, so the
profile shows them with their peer; the bubble grows as micro-batches shrink
in number.  The last stage scales its loss by 1/M, so the accumulated
gradient and the reported loss equal the one-rank step on the whole batch.
"""
from __future__ import annotations

import numpy as np

from msprof.runtime import hooks
from msprof.runtime.autodiff import gradients
from msprof.runtime.comm import get_group_size, get_rank
from msprof.runtime.compiler import compile_graph
from msprof.runtime.graph import GraphBuilder, builder
from msprof.runtime.ops_comm import Broadcast, Recv, Send
from msprof.runtime.ops_math import Mul
from msprof.runtime.ops_optim import AssignAdd, ZeroFill
from msprof.runtime.parallel.context import get_auto_parallel_context
from msprof.runtime.tensor import Parameter, Tensor, as_array


def stage_cells(network, stages: int) -> list[list]:
    """The sub-cells of each stage, in order; checks the assignment."""
    cells = list(network._order)
    given = [getattr(c, "pipeline_stage", None) for c in cells]
    if all(g is None for g in given):
        per = -(-len(cells) // stages)
        given = [i // per for i in range(len(cells))]
    out = [[] for _ in range(stages)]
    last = 0
    for cell, s in zip(cells, given):
        if s is None or not 0 <= s < stages or s < last:
            raise ValueError(f"pipeline_stage of {type(cell).__name__} ({s}) must be set on "
                             f"every cell, non-decreasing and below {stages}")
        out[s].append(cell)
        last = s
    empty = [s for s, c in enumerate(out) if not c]
    if empty:
        raise ValueError(f"pipeline stage(s) {empty} have no cell")
    return out


class PipelineTrainOneStepCell:
    """``loss = step(x, y)`` on every rank of a pipeline of ``pipeline_stages``
    ranks; ``make_optimizer(params)`` builds this stage's optimizer."""

    def __init__(self, network, loss_fn, make_optimizer, micro_batches: int | None = None):
        self.stages = get_auto_parallel_context("pipeline_stages")
        if self.stages != get_group_size():
            raise ValueError(f"pipeline_stages={self.stages} needs as many ranks, "
                             f"the job has {get_group_size()}")
        self.micro = micro_batches or get_auto_parallel_context("micro_batches") or self.stages
        self.stage = get_rank()
        self.first, self.last = self.stage == 0, self.stage == self.stages - 1
        dict(network.parameters_and_names())          # names the parameters
        self.cells = stage_cells(network, self.stages)[self.stage]
        self.loss_fn = loss_fn
        self.params = [p for c in self.cells for _, p in c.parameters_and_names()
                       if p.requires_grad]
        self.optimizer = make_optimizer(self.params)
        self.accum = [Parameter(np.zeros(p.shape, np.float32), name=f"accum.{p.name}",
                                requires_grad=False) for p in self.params]
        self.loss_acc = Parameter(np.zeros((), np.float32), name="pipeline.loss",
                                  requires_grad=False)
        self.network = network
        self.step = 0
        self._graphs = None

    # -- capture --------------------------------------------------------------
    def _run_stage(self, x):
        with builder().scope("net"):          # the scopes of the whole network's ops
            for cell in self.cells:
                x = cell(x)
        return x

    def _boundaries(self, x_shape):
        """Activation shape entering each stage (and leaving the last)."""
        with GraphBuilder("shapes", root=self.network) as b:
            v = b.input(x_shape)
            shapes = [v.shape]
            for cells in stage_cells(self.network, self.stages):
                for cell in cells:
                    v = cell(v)
                shapes.append(b.value(v).shape)
        return shapes

    def _compile(self, x_shape, y_shape, y_dtype):
        s, shapes = self.stage, self._boundaries(x_shape)
        in_shape, out_shape = shapes[s], shapes[s + 1]
        fwd = None
        if not self.first:
            with GraphBuilder(f"Pipeline{s}Forward", root=self.network) as b:
                x = b.add(Recv, (), shape=in_shape, peer=s - 1)
                y = self._run_stage(x)
                if not self.last:
                    b.add(Send, (y,), peer=s + 1)
                fwd = compile_graph(b.finish([x]))
        elif not self.last:
            with GraphBuilder(f"Pipeline{s}Forward", root=self.network) as b:
                b.add(Send, (self._run_stage(b.input(in_shape)),), peer=s + 1)
                fwd = compile_graph(b.finish([]))
        with GraphBuilder(f"Pipeline{s}Backward", root=self.network) as b:
            x = b.input(in_shape)
            wrt = self.params + ([] if self.first else [x])
            y = self._run_stage(x)
            if self.last:
                labels = b.input(y_shape, y_dtype)
                loss = b.add(Mul, (self.loss_fn(y, labels),
                                   np.array(1.0 / self.micro, np.float32)))
                b.add(AssignAdd, (self.loss_acc, loss))
                grads = gradients(loss, wrt)
            else:
                dy = b.add(Recv, (), shape=out_shape, peer=s + 1)
                grads = gradients(y, wrt, sens=dy)
            for acc, g in zip(self.accum, grads):
                if g is not None:
                    b.add(AssignAdd, (acc, g))
            if not self.first:
                b.add(Send, (grads[-1],), peer=s - 1)
            bwd = compile_graph(b.finish([]))
        with GraphBuilder(f"Pipeline{s}Update", root=self.network) as b:
            self.optimizer(self.accum)
            for acc in self.accum:
                b.add(ZeroFill, (acc,))
            loss = b.add(Broadcast, (self.loss_acc,), root=self.stages - 1)
            upd = compile_graph(b.finish([loss]))
        return fwd, bwd, upd

    # -- one step -------------------------------------------------------------
    def __call__(self, x, y):
        x, y = as_array(x), as_array(y)
        m = self.micro
        if len(x) % m:
            raise ValueError(f"a batch of {len(x)} does not split into {m} micro-batches")
        xs, ys = np.split(x, m), np.split(y, m)
        if self._graphs is None:
            self._graphs = self._compile(xs[0].shape, ys[0].shape, ys[0].dtype)
        fwd, bwd, upd = self._graphs
        step, self.step = self.step, self.step + 1
        self.optimizer.before_step(step)
        hooks.step_begin(step)
        stash = []
        for i in range(m):                                    # GPipe: all forwards,
            if self.first:
                stash.append(xs[i])
                if fwd is not None:
                    fwd.run([xs[i]])
            else:
                stash.append(fwd.run([])[0])
        for i in range(m):                                    # then all backwards
            bwd.run([stash[i], ys[i]] if self.last else [stash[i]])
        loss = upd.run([])[0]
        self.loss_acc.set_data(0.0)                           # streams are idle here
        # The first stage counts the batch (every stage is given it): the
        # ranks' counts add up to the job's samples per step.
        hooks.step_end(step, len(x) if self.first else 0)
        return Tensor(loss)
