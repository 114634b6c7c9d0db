"""Each rank runs the toy workload (argv: steps) and one allreduce per step."""
import sys

import numpy as np
from mpi4py import MPI

from msprof.runtime import hooks

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
hooks.device_init(rank, size, hooks.DEVICE_CPU)
hooks.op_register(1, 0, "MatMul-op1", "MatMul", "net/dense/MatMul-op1", 1000, 64)
buf = np.ones(1024, np.float32)
for step in range(steps):
    hooks.step_begin(step)
    t = hooks.now_ns()
    hooks.kernel_end(1, 0, step, t - 2000, t - 1000)
    hooks.comm_begin(0, buf.nbytes, 0, -1, step)
    comm.Allreduce(MPI.IN_PLACE, buf)
    hooks.comm_end(0, buf.nbytes, 0, -1, step)
    hooks.step_end(step, 0)
if len(sys.argv) > 2 and rank == int(sys.argv[2]):
    sys.exit(5)
