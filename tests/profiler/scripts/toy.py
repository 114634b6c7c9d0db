"""A tiny probe workload with a known answer: STEPS steps of two kernels,
one alloc/free pair and one allreduce each, step s on 8 + s samples.  argv: steps [exit status]."""
import sys

from msprof.runtime import hooks

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
hooks.device_init(0, 1, hooks.DEVICE_CPU)
hooks.op_register(1, 0, "MatMul-op1", "MatMul", "net/dense/MatMul-op1", 1000, 64)
hooks.op_register(2, 0, "ReLU-op2", "ReLU", "net/relu/ReLU-op2", 10, 64)
for step in range(steps):
    hooks.step_begin(step)
    hooks.mem_alloc(4096, 256, 1, 256)
    for i, op in enumerate((1, 2)):
        launch = hooks.now_ns()
        begin = hooks.now_ns()
        hooks.kernel_end(op, 0, step * 2 + i, launch, begin)
    hooks.mem_free(4096, 256, 1, 0)
    hooks.comm_begin(0, 1024, 0, -1, step)
    hooks.comm_end(0, 1024, 0, -1, step)
    hooks.step_end(step, 8 + step)     # the samples the step trained on
if len(sys.argv) > 2:
    sys.exit(int(sys.argv[2]))
