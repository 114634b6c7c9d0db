"""The probe sites as the ELF notes describe them, and the argument code."""
import pytest

from msprof.errors import MsprofError
from msprof.probes.usdt import Probe, _read_arg, entry_point, read_probes
from msprof.profiler.library import runtime_probe_library
from msprof.runtime import hooks

ALL = {"device_init", "op_register", "step_begin", "step_end", "kernel_launch",
       "kernel_begin", "kernel_end", "mem_alloc", "mem_free", "mem_batch", "comm_begin",
       "comm_end", "record_batch"}


def test_every_hook_is_a_semaphore_guarded_probe():
    probes = read_probes(runtime_probe_library())
    # flush_staged is the hook that fires record_batch
    assert set(probes) == ALL == set(hooks.HOOK_NAMES) - {"flush_staged"} | {"record_batch"}
    for p in probes.values():
        assert p.provider == "msrt"
        assert p.semaphore_offset > 0
        assert p.offset > 0
    arity = {"device_init": 3, "op_register": 7, "step_begin": 1, "step_end": 2,
             "kernel_launch": 3, "kernel_begin": 3, "kernel_end": 5, "mem_alloc": 4,
             "mem_free": 4, "mem_batch": 12, "comm_begin": 5, "comm_end": 5,
             "record_batch": 2}
    assert {n: len(p.args) for n, p in probes.items()} == arity


def test_semaphores_are_distinct_and_in_the_probes_section():
    probes = read_probes(runtime_probe_library())
    sems = [p.semaphore_offset for p in probes.values()]
    assert len(set(sems)) == len(sems)


@pytest.mark.parametrize("spec,code", [
    ("-8@%rbp", "a = (s64)ctx->bp;"),
    ("8@%rcx", "a = (s64)ctx->cx;"),
    ("-4@%r12d", "a = (s32)ctx->r12;"),
    ("4@%eax", "a = (u32)ctx->ax;"),
    ("-8@$42", "a = (s64)(42);"),
])
def test_register_and_constant_arguments(spec, code):
    assert _read_arg(spec, "a") == code


def test_stack_argument_reads_user_memory():
    code = _read_arg("-8@16(%rsp)", "a")
    assert "bpf_probe_read_user" in code and "ctx->sp + (16)" in code
    assert "ctx->sp + (0)" in _read_arg("-8@(%rsp)", "a")


def test_unsupported_argument_is_a_clear_error():
    with pytest.raises(MsprofError, match="unsupported"):
        _read_arg("-8@%xmm0", "a")


def test_entry_point_calls_the_handler_with_every_argument():
    p = Probe("msrt", "step_end", 0x10, 0x20, ("-8@%rbp",))
    text = entry_point(p, "handle_step_end")
    assert "int usdt_step_end(struct pt_regs *ctx)" in text
    assert "return handle_step_end(ctx, a);" in text


def test_file_without_probes_is_rejected(tmp_path):
    with pytest.raises(MsprofError):
        read_probes("/bin/true")
    with pytest.raises(MsprofError, match="cannot read"):
        read_probes(str(tmp_path / "missing.so"))
