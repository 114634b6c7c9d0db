"""Loaded at start-up by every Python process that msprof launches (its
folder leads PYTHONPATH), and only by those: PyTorch without msprof never
sees the shim.

- A launcher's ranks (``msprof run -n N``: mpiexec) get the environment
  torchrun would give them (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
  MASTER_PORT), so a torch.distributed script runs unchanged.
- When the script imports torch, the shim (MSPROF_TORCH_SHIM, built by
  frameworks/torch/build.py) is loaded and enabled, and global nn.Module
  hooks name each operator's module scope (``MLP/encoder/fc1``).
- Any sitecustomize this one hides (a virtualenv's, a distribution's) is
  still run.
"""
import os
import sys


def _run_hidden_sitecustomize():
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.machinery
    import importlib.util
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def _torchrun_environment():
    """PMI (mpiexec) -> the variables torch.distributed's env:// reads."""
    if "RANK" in os.environ or "PMI_RANK" not in os.environ:
        return
    rank, size = os.environ["PMI_RANK"], os.environ.get("PMI_SIZE", "1")
    os.environ.update({
        "RANK": rank, "WORLD_SIZE": size,
        "LOCAL_RANK": os.environ.get("MPI_LOCALRANKID", rank),
        "LOCAL_WORLD_SIZE": os.environ.get("MPI_LOCALNRANKS", size),
        "MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
        "MASTER_PORT": os.environ.get("MSPROF_MASTER_PORT", "29500"),
    })


def _install_torch_hook():
    import importlib.abc
    import importlib.util

    class TorchFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name != "torch":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec("torch")
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_then_enable(module):
                exec_module(module)
                _enable(module)

            spec.loader.exec_module = exec_then_enable
            return spec

    sys.meta_path.insert(0, TorchFinder())


# At exit, how long to let c10d's worker threads drop the last collectives
# (they do within milliseconds once they get the GIL; a Work the script
# itself still holds is not waited for past this).
SETTLE_S = 1.0

# Launchers import torch too: they are not ranks, and their operators
# (none while they wait) would stand for a rank 0 that is not there.
_LAUNCHERS = ("torchrun", "torch.distributed.run", "torch.distributed.launch")


def _is_launcher():
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
    if argv0 in _LAUNCHERS:
        return True
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) in _LAUNCHERS or sys.argv[0].replace(os.sep, "/").endswith(
        ("torch/distributed/run.py", "torch/distributed/launch.py"))


def _enable(torch):
    shim_path = os.environ.get("MSPROF_TORCH_SHIM")
    if not shim_path or _is_launcher():
        return
    try:
        import importlib.machinery
        import importlib.util
        loader = importlib.machinery.ExtensionFileLoader("msprof_torch_shim", shim_path)
        spec = importlib.util.spec_from_file_location("msprof_torch_shim", shim_path, loader=loader)
        shim = importlib.util.module_from_spec(spec)
        loader.exec_module(shim)
    except Exception as e:  # the script runs on, unprofiled, and says why
        print(f"msprof: cannot load the PyTorch shim ({e}); PyTorch operators are not "
              "recorded", file=sys.stderr)
        return
    sys.modules["msprof_torch_shim"] = shim
    shim.enable(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                os.environ.get("MSPROF_INPROCESS_DIR", ""))
    from msprof_torch_scopes import install, step_aside_for_torch_profiler
    install(torch, shim)
    step_aside_for_torch_profiler(shim)
    import atexit
    atexit.register(shim.flush)
    # Registered after flush, so run before it (atexit is last in, first
    # out): gloo's workers drop the last collectives while Python still
    # lets them take the GIL (see settle in msprof_torch.cpp).
    atexit.register(shim.settle, SETTLE_S)


_run_hidden_sitecustomize()
if os.environ.get("MSPROF_TORCH_SHIM"):
    _torchrun_environment()
    _install_torch_hook()
