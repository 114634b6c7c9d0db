"""nn.Module scopes for the PyTorch shim: global forward hooks push each
module's path (``MLP/encoder/fc1``: the root's class, then attribute names)
while it runs, so its operators, and through autograd's sequence numbers
their gradients, group under the model's own names.

Paths are computed once per (parent, child) pair and interned by the shim;
a hook then costs a dict lookup and a C call (~1 us per module call).
"""
import threading
import weakref

_WRAPPERS = ("DistributedDataParallel", "DataParallel")   # transparent in paths


def install(torch, shim):
    local = threading.local()
    ids = weakref.WeakKeyDictionary()   # child module -> {parent's scope id: its scope id}

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

    def scope_of(module, parent_id, parent_path, parent):
        per_parent = ids.get(module)
        if per_parent is None:
            per_parent = ids[module] = {}
        found = per_parent.get(parent_id)
        if found is None:
            name = type(module).__name__ if parent is None else child_name(parent, module)
            path = f"{parent_path}/{name}" if parent_path else name
            found = per_parent[parent_id] = (shim.scope_id(path), path)
        return found

    def pre(module, args):
        s = stack()
        if type(module).__name__ in _WRAPPERS:
            s.append(None)
            return
        top = next((e for e in reversed(s) if e is not None), None)
        if top is None:
            sid, path = scope_of(module, -1, "", None)
        else:
            sid, path = scope_of(module, top[1], top[2], top[0])
        s.append((module, sid, path))
        shim.push_module(sid)

    def post(module, args, output):
        s = stack()
        if s:
            entry = s.pop()
            if entry is not None:
                shim.pop_module()

    torch.nn.modules.module.register_module_forward_pre_hook(pre)
    torch.nn.modules.module.register_module_forward_hook(post, always_call=True)


def step_aside_for_torch_profiler(shim):
    """torch.profiler refuses to start while another profiler state is on
    the thread (the shim's CPU memory reporter is one): pause it while a
    torch.profiler runs.  torch.autograd.profiler is imported lazily by torch,
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
