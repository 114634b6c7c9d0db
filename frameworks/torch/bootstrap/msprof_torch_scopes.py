"""nn.Module scopes for the PyTorch shim: each module call pushes the
module's path (``MLP/encoder/fc1``: the root's class, then attribute names)
while it runs, so its operators, and through autograd's sequence numbers
their gradients, group under the model's own names.

The push and pop wrap ``nn.Module.__call__`` rather than hang on global
forward hooks: any global hook sends every module call down
``_call_impl``'s slow path, which cost 1.5-1.9 us per call with two empty
hooks and 3.1 us with the scope work in them, against 0.1-0.3 us for a
plain wrapper (an MLP forward of 6 modules, one thread, torch 2.13).
Paths are computed once per (module, parent) pair and interned by the
shim; a call then costs two dict lookups and two C calls.

Under torch.compile the wrapper steps aside (``is_compiling()`` is a
constant to the compiler): the compiled graph keeps no Python calls of
msprof's, and its operators take the scope of the module that runs it.
"""
import threading
import weakref

_WRAPPERS = ("DistributedDataParallel", "DataParallel")   # transparent in paths


def install(torch, shim):
    local = threading.local()
    # id(module) -> {parent's scope id: (scope id, path)}; an entry goes
    # with its module (the weakref's callback), so an id never names two.
    scopes = {}
    push, pop = shim.push_module, shim.pop_module
    is_compiling = torch.compiler.is_compiling
    call = torch.nn.Module.__call__

    def stack():
        s = getattr(local, "stack", None)
        if s is None:
            s = local.stack = []
        return s

    def child_name(parent, module):
        for name, m in parent._modules.items():
            if m is module:
                return name
        return type(module).__name__

    def scope_of(module, parent):
        """(scope id, path) of ``module`` called from ``parent`` (an entry
        of the stack, or None at the root)."""
        key = id(module)
        per_parent = scopes.get(key)
        if per_parent is None:
            per_parent = {}
            scopes[key] = per_parent
            weakref.finalize(module, scopes.pop, key, None)
        parent_id = parent[1] if parent else -1
        found = per_parent.get(parent_id)
        if found is None:
            if parent is None:
                path = type(module).__name__
            else:
                path = f"{parent[2]}/{child_name(parent[0], module)}"
            found = per_parent[parent_id] = (shim.scope_id(path), path)
        return found

    def scoped_call(self, *args, **kwargs):
        if is_compiling():
            return call(self, *args, **kwargs)
        s = stack()
        if type(self).__name__ in _WRAPPERS:
            return call(self, *args, **kwargs)
        sid, path = scope_of(self, s[-1] if s else None)
        s.append((self, sid, path))
        push(sid)
        try:
            return call(self, *args, **kwargs)
        finally:
            pop()
            s.pop()

    torch.nn.Module.__call__ = scoped_call


def step_aside_for_torch_profiler(shim):
    """torch.profiler keeps its state where the shim's CPU memory reporter
    is (versions that check for any state there refuse to start beside
    it): pause the reporter while a torch.profiler runs.  torch.autograd.profiler is imported lazily by torch,
    so the hook goes on when it is."""
    import sys

    def patch(mod):
        enable, disable = mod._enable_profiler, mod._disable_profiler

        def enable_profiler(*a, **k):
            shim.pause_memory()
            return enable(*a, **k)

        def disable_profiler(*a, **k):
            try:
                return disable(*a, **k)
            finally:
                shim.resume_memory()

        mod._enable_profiler, mod._disable_profiler = enable_profiler, disable_profiler

    mod = sys.modules.get("torch.autograd.profiler")
    if mod is not None:
        patch(mod)
