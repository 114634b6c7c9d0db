/*
 * msprof.runtime._usdt: the runtime's USDT probe sites (provider "msrt").
 *
 * Every probe is semaphore-guarded: a function checks its probe's semaphore
 * before it parses a single argument, so a probe nobody traces costs about as
 * much as calling an empty C function from Python.  A tracer that attaches to
 * a probe raises its semaphore (the kernel does it for uprobes registered
 * with a ref_ctr offset), and from then on the arguments are parsed and the
 * stock one-byte-nop probe site fires.
 *
 * A traced probe traps into the kernel for the better part of a microsecond.
 * The GIL is released around the probe site while it does, so the stream
 * thread (which needs the GIL between its numpy calls) is not held up by the
 * host thread's memory and launch probes: on the LeNet demo this halves the
 * tracing overhead.  Untraced probes never touch the GIL.
 *
 * The probes, their arguments and their meaning are listed in
 * probes/CATALOG.md; keep the two in step.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#define SEMAPHORE(name) \
    __extension__ unsigned short msrt_##name##_semaphore \
    __attribute__((unused)) __attribute__((section(".probes"))) = 0;

SEMAPHORE(device_init)
SEMAPHORE(op_register)
SEMAPHORE(step_begin)
SEMAPHORE(step_end)
SEMAPHORE(kernel_launch)
SEMAPHORE(kernel_begin)
SEMAPHORE(kernel_end)
SEMAPHORE(mem_alloc)
SEMAPHORE(mem_free)
SEMAPHORE(mem_batch)
SEMAPHORE(comm_begin)
SEMAPHORE(comm_end)

#define ENABLED(name) __builtin_expect(msrt_##name##_semaphore, 0)

/* Read nargs Python ints into a long long array; -1 and an exception on error. */
static int
ints(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want,
     long long *out, const char *fname)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)",
                     fname, want, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < want; i++) {
        out[i] = PyLong_AsLongLong(args[i]);
        if (out[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

#define INT_PROBE(name, n, FIRE)                                             \
static PyObject *                                                            \
name(PyObject *self, PyObject *const *args, Py_ssize_t nargs)                \
{                                                                            \
    if (ENABLED(name)) {                                                     \
        long long a[n];                                                      \
        if (ints(args, nargs, n, a, #name) < 0)                              \
            return NULL;                                                     \
        Py_BEGIN_ALLOW_THREADS                                               \
        FIRE;                                                                \
        Py_END_ALLOW_THREADS                                                 \
    }                                                                        \
    Py_RETURN_NONE;                                                          \
}

INT_PROBE(device_init, 3, STAP_PROBE3(msrt, device_init, a[0], a[1], a[2]))
INT_PROBE(step_begin, 1, STAP_PROBE1(msrt, step_begin, a[0]))
INT_PROBE(step_end, 1, STAP_PROBE1(msrt, step_end, a[0]))
INT_PROBE(kernel_launch, 3, STAP_PROBE3(msrt, kernel_launch, a[0], a[1], a[2]))
INT_PROBE(kernel_begin, 3, STAP_PROBE3(msrt, kernel_begin, a[0], a[1], a[2]))
INT_PROBE(kernel_end, 5,
          STAP_PROBE5(msrt, kernel_end, a[0], a[1], a[2], a[3], a[4]))
INT_PROBE(mem_alloc, 4, STAP_PROBE4(msrt, mem_alloc, a[0], a[1], a[2], a[3]))
INT_PROBE(mem_free, 4, STAP_PROBE4(msrt, mem_free, a[0], a[1], a[2], a[3]))
INT_PROBE(comm_begin, 5,
          STAP_PROBE5(msrt, comm_begin, a[0], a[1], a[2], a[3], a[4]))
INT_PROBE(comm_end, 5,
          STAP_PROBE5(msrt, comm_end, a[0], a[1], a[2], a[3], a[4]))

/* mem_batch(in_use, frees, addr0, size0, op0[, addr1, size1, op1[, addr2,
 * size2, op2]]): up to three pool events in one probe hit, in order, each
 * (address, size in bytes, op id); bit i of ``frees`` marks event i a free
 * (else an allocation); ``in_use`` is the pool's bytes in use before the
 * first.  The probe always passes three events (n says how many are real):
 * the executor's per-op allocations and frees cost one trap instead of one
 * each. */
#define MEM_BATCH_MAX 3
static PyObject *
mem_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (ENABLED(mem_batch)) {
        long long a[2 + 3 * MEM_BATCH_MAX] = {0};
        Py_ssize_t n = (nargs - 2) / 3;
        if (nargs < 5 || (nargs - 2) % 3 || n > MEM_BATCH_MAX) {
            PyErr_Format(PyExc_TypeError, "mem_batch() takes in_use, frees and 1 to %d "
                         "(addr, size, op_id) triples (%zd arguments given)",
                         MEM_BATCH_MAX, nargs);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            a[i] = PyLong_AsLongLong(args[i]);
            if (a[i] == -1 && PyErr_Occurred())
                return NULL;
        }
        long long count = n;
        Py_BEGIN_ALLOW_THREADS
        STAP_PROBE12(msrt, mem_batch, a[0], count, a[1], a[2], a[3], a[4], a[5], a[6],
                     a[7], a[8], a[9], a[10]);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

/* op_register(op_id, graph_id, name, type, scope, flops, bytes) */
static PyObject *
op_register(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (ENABLED(op_register)) {
        long long op_id, graph_id, flops, nbytes;
        const char *name, *type, *scope;
        if (nargs != 7) {
            PyErr_Format(PyExc_TypeError,
                         "op_register() takes 7 arguments (%zd given)", nargs);
            return NULL;
        }
        op_id = PyLong_AsLongLong(args[0]);
        graph_id = PyLong_AsLongLong(args[1]);
        flops = PyLong_AsLongLong(args[5]);
        nbytes = PyLong_AsLongLong(args[6]);
        if (PyErr_Occurred())
            return NULL;
        name = PyUnicode_AsUTF8(args[2]);
        type = name ? PyUnicode_AsUTF8(args[3]) : NULL;
        scope = type ? PyUnicode_AsUTF8(args[4]) : NULL;
        if (scope == NULL)
            return NULL;
        STAP_PROBE7(msrt, op_register, op_id, graph_id, name, type, scope,
                    flops, nbytes);
    }
    Py_RETURN_NONE;
}

/* A do-nothing function: the baseline a disabled probe is measured against. */
static PyObject *
noop(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_RETURN_NONE;
}

static PyObject *
now_ns(PyObject *self, PyObject *unused)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return PyLong_FromLongLong((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

/* enabled(name) -> bool: whether a tracer holds the probe's semaphore. */
static PyObject *
enabled(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL)
        return NULL;
#define CHECK(p) if (strcmp(name, #p) == 0) return PyBool_FromLong(msrt_##p##_semaphore != 0);
    CHECK(device_init) CHECK(op_register) CHECK(step_begin) CHECK(step_end)
    CHECK(kernel_launch) CHECK(kernel_begin) CHECK(kernel_end)
    CHECK(mem_alloc) CHECK(mem_free) CHECK(mem_batch) CHECK(comm_begin) CHECK(comm_end)
#undef CHECK
    PyErr_Format(PyExc_KeyError, "no probe named %s", name);
    return NULL;
}

#define FAST(name, doc) {#name, (PyCFunction)(void (*)(void))name, METH_FASTCALL, doc}

static PyMethodDef methods[] = {
    FAST(device_init, "device_init(rank, world_size, device_kind)"),
    FAST(op_register, "op_register(op_id, graph_id, name, type, scope, flops, bytes)"),
    FAST(step_begin, "step_begin(step)"),
    FAST(step_end, "step_end(step)"),
    FAST(kernel_launch, "kernel_launch(op_id, stream, seq)"),
    FAST(kernel_begin, "kernel_begin(op_id, stream, seq)"),
    FAST(kernel_end, "kernel_end(op_id, stream, seq, launch_ns, begin_ns)"),
    FAST(mem_alloc, "mem_alloc(addr, size, op_id, in_use)"),
    FAST(mem_free, "mem_free(addr, size, op_id, in_use)"),
    FAST(mem_batch, "mem_batch(in_use, frees, addr, size, op_id, ...): 1 to 3 pool events"),
    FAST(comm_begin, "comm_begin(kind, bytes, group, peer, seq)"),
    FAST(comm_end, "comm_end(kind, bytes, group, peer, seq)"),
    FAST(noop, "noop(*args): does nothing (benchmark baseline)"),
    {"now_ns", now_ns, METH_NOARGS, "CLOCK_MONOTONIC in nanoseconds"},
    {"enabled", enabled, METH_O, "enabled(name): is the probe traced?"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_usdt",
    "USDT probe sites of the msprof runtime (provider msrt).", -1, methods,
};

PyMODINIT_FUNC
PyInit__usdt(void)
{
    return PyModule_Create(&module);
}
