"""Two gloo ranks that end the moment their last collective completes,
with the process group still referenced (as a DDP model keeps it) and a
Python object in torch's thread-local state (as DDP and torch.compile
keep some): the backend's worker threads then drop the last Works, and
need the GIL to, while the interpreter exits.  An atexit handler registered before torch is imported runs after
msprof's and prints how many of this process's collectives the workers
still hold ("held N"): it must be 0 before Python finalizes."""
import atexit
import sys


def held():
    shim = sys.modules.get("msprof_torch_shim")
    print(f"held {shim.collectives_held() if shim else 'no shim'}", flush=True)


atexit.register(held)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

dist.init_process_group("gloo")
group = dist.group.WORLD
torch._C._stash_obj_in_tls("exit_after_collectives", object())
t = torch.ones(1 << 16)
# The futures kept, not the Works: the workers drop the Works last, as in
# DDP; the job ends on a burst of them.
for _ in range(4):
    torch.futures.wait_all([dist.all_reduce(t[i::8], async_op=True).get_future()
                            for i in range(8)])
