"""Cell: the building block of networks, as in MindSpore.

A cell registers the Parameters and sub-cells assigned to its attributes;
the attribute name is the cell's segment of the scope path (``net/conv1``).
Calling a cell inside a graph capture runs its ``construct`` under its
scope.  Calling it outside one (with arrays or Tensors) compiles a graph
for those input shapes once, caches it, and runs it on the device: graph
mode, with no separate eager path.
"""
from __future__ import annotations

from msprof.runtime.graph import GraphBuilder, current_builder
from msprof.runtime.tensor import Parameter, Tensor, as_array

ROOT_SCOPE = "net"


class Cell:
    # A wrapper (loss wrapper, train step) adds no scope segment of its own,
    # so a backbone's ops keep the same scopes in training and inference.
    transparent = False

    def __init__(self):
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_cells", {})
        object.__setattr__(self, "_compiled", {})
        object.__setattr__(self, "scope_name", None)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._params[name] = value
        elif isinstance(value, Cell):
            self._cells[name] = value
            if value.scope_name is None:
                object.__setattr__(value, "scope_name", name)
        object.__setattr__(self, name, value)

    def construct(self, *args):
        raise NotImplementedError(f"{type(self).__name__}.construct")

    # -- calling ----------------------------------------------------------------
    def __call__(self, *args):
        b = current_builder()
        if b is None:
            return self._run(*args)
        if self.transparent:
            segment = None
        elif b.root is self:
            segment = ROOT_SCOPE     # the captured root is "net", wherever it is registered
        else:
            segment = self.scope_name or ROOT_SCOPE
        with b.scope(segment):
            return self.construct(*args)

    def compile(self, *specs):
        """Capture and compile for inputs of these (shape, dtype) specs."""
        from msprof.runtime.compiler import compile_graph
        with GraphBuilder(type(self).__name__, root=self) as b:
            ins = [b.input(shape, dtype) for shape, dtype in specs]
            graph = b.finish(self(*ins))
        return compile_graph(graph)

    def executable(self, *arrays):
        """The compiled graph for inputs like these (compiling on first use)."""
        key = tuple((a.shape, a.dtype.str) for a in arrays)
        exe = self._compiled.get(key)
        if exe is None:
            exe = self._compiled[key] = self.compile(*((a.shape, a.dtype) for a in arrays))
        return exe

    def _run(self, *args):
        arrays = [as_array(a) for a in args]
        step = self._next_step()
        samples = self._step_samples(arrays) if step is not None else 0
        outs = self.executable(*arrays).run(arrays, step=step, samples=samples)
        outs = [Tensor(o) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _next_step(self):
        return None        # a training cell numbers its steps

    def _step_samples(self, arrays) -> int:
        """This rank's samples in a training step on ``arrays``: the rows of
        the first input (see :func:`parallel.context.step_samples`)."""
        from msprof.runtime.parallel.context import step_samples

        first = arrays[0] if arrays else None
        return step_samples(len(first)) if first is not None and first.ndim else 0

    # -- parameters and sub-cells ------------------------------------------------
    def cells_and_names(self, prefix=""):
        yield prefix, self
        for name, cell in self._cells.items():
            yield from cell.cells_and_names(f"{prefix}.{name}" if prefix else name)

    def parameters_and_names(self):
        """(dotted name, Parameter), each parameter once; names unnamed ones."""
        seen = set()
        for prefix, cell in self.cells_and_names():
            for name, p in cell._params.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                full = f"{prefix}.{name}" if prefix else name
                if not p.name:
                    p.name = full
                yield full, p

    def trainable_params(self) -> list[Parameter]:
        return [p for _, p in self.parameters_and_names() if p.requires_grad]

    def __repr__(self):
        lines = [f"{type(self).__name__}("]
        for name, cell in self._cells.items():
            inner = repr(cell).replace("\n", "\n  ")
            lines.append(f"  ({name}): {inner}")
        return "\n".join(lines) + ")" if len(lines) > 1 else f"{type(self).__name__}()"

