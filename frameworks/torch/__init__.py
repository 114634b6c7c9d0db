"""The PyTorch adapter: a C++ shim on torch's RecordFunction callbacks
(msprof_torch.cpp), its build (build.py) and the bootstrap that loads it
into the processes msprof launches (bootstrap/sitecustomize.py)."""
