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
 * host thread's memory and launch probes.  Untraced probes never touch the GIL.
 *
 * Staged records.  While a tracer holds ``record_batch``, the hot-path events
 * (kernel_end, mem_alloc, mem_free, mem_batch) are not trapped one by one:
 * each is written, complete with its timestamp, as the very record the BPF
 * program would have written (probes/events.py's EVENT layout, pid and tid
 * left to the kernel) into a per-thread staging area, and one
 * ``record_batch`` hit hands the tracer up to STAGE_CAP of them.  A thread
 * flushes when its area is full and whenever flush_staged() is called (a
 * stream at each synchronize marker, the executor after each graph run).  The
 * first record a thread stages, or its first flush_staged() (a stream thread
 * calls it as it starts), announces its area's address
 * (``record_batch(area, 0)``), so that a tracer can still read what is
 * staged when the thread exits without flushing, even by SIGKILL, and knows
 * the thread for one of the runtime's (its waits for a CPU, its sleeps).
 *
 * A tracer that attaches to a process already running (``msprof attach``)
 * missed the announcements made before it came: the device (rank) and the
 * operators of every compiled graph, and each thread's staging area.  Such
 * a tracer, once its probes are in place, asks for them by adding one to
 * ``msrt_announce_request`` in the process's memory (through
 * /proc/PID/mem, as the kernel raises semaphores): the next step_begin or
 * hand-over of staged records that finds it above what was served first
 * calls the announcer (runtime/hooks.py, which fires device_init and every
 * op_register again) and makes each thread announce its area again.  (The
 * semaphores cannot tell: they count processes, not tracers, so one
 * joining another leaves them as they were.)  A step_end or comm_end is fired only
 * when its begin was, with the end already traced: the tracer never sees an
 * end whose begin came before it (counted as unpaired, that would look like
 * a lost event).  A tracer attaches begins before ends, and a semaphore
 * goes up a moment before its probe's program is in place: a begin fired
 * while the end's semaphore was up was seen.
 *
 * The probes, their arguments and their meaning are listed in
 * probes/CATALOG.md; keep the two in step.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
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
SEMAPHORE(record_batch)

#define ENABLED(name) __builtin_expect(msrt_##name##_semaphore, 0)


static long long
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- staged records ---------------------------------------------------- */

/* One event record, byte for byte probes/events.py's EVENT (56 bytes). */
struct record {
    uint64_t ts;
    uint32_t pid, tid;          /* filled in by the tracer */
    uint16_t type, sub;
    uint32_t seq;
    int64_t a0, a1, a2, a3;
};
_Static_assert(sizeof(struct record) == 56, "EVENT layout");

/* Event types, as in probes/events.py. */
#define EV_KERNEL 1
#define EV_MEM_ALLOC 2
#define EV_MEM_FREE 3

/* Records per record_batch hit: the tracer reads at most this many. */
#define STAGE_CAP 64

/* A thread's staging area; the tracer reads ``count`` and ``records`` from
 * this address when the thread exits (see trace.c). */
struct stage {
    int64_t count;
    struct record records[STAGE_CAP];
};

static __thread struct stage stage;
/* The announcement generation this thread's area was last announced in
 * (0: never); a late tracer's arrival starts a new one. */
static __thread int stage_announced;
static int announce_generation = 1;

/* Announcements a late tracer asks for again (see the top): requests
 * written from outside, and those served.  In .probes beside the
 * semaphores, where a tracer finds them by their symbol. */
static PyObject *announcer;
__extension__ volatile unsigned int msrt_announce_request
    __attribute__((used)) __attribute__((section(".probes"))) = 0;
static unsigned int announce_served;

/* The step the process is in (-1 outside one): kernels carry it. */
static long long current_step = -1;

/* The one record_batch probe site: count records staged at area, or (count
 * 0) the announcement of a thread's area. */
static __attribute__((noinline)) void
fire_record_batch(struct stage *area, long long count)
{
    STAP_PROBE2(msrt, record_batch, area, count);
}

/* A tracer that came late asked for the announcements: the announcer fires
 * them all again, and each thread announces its area again (the GIL is
 * held: every caller is a method of this module). */
static void
announce_again_if_traced(void)
{
    unsigned int request = msrt_announce_request;
    if (__builtin_expect(request == announce_served, 1) || announcer == NULL)
        return;
    announce_served = request;
    announce_generation++;
    PyObject *r = PyObject_CallNoArgs(announcer);
    if (r == NULL)
        PyErr_WriteUnraisable(announcer);   /* never break the training for it */
    Py_XDECREF(r);
}

static void
announce_area(void)
{
    if (stage_announced != announce_generation) {
        fire_record_batch(&stage, 0);
        stage_announced = announce_generation;
    }
}

static void
flush_stage(void)
{
    long long count = stage.count;
    if (count == 0)
        return;
    announce_again_if_traced();
    announce_area();
    /* The GIL stays held: a flush costs a few microseconds, and a stream
     * thread that let go of it would wait for the host's next switch
     * interval to get it back. */
    if (ENABLED(record_batch))
        fire_record_batch(&stage, count);
    stage.count = 0;
}

/* The next free record of this thread's area (flushing it first if full). */
static struct record *
stage_record(uint16_t type)
{
    announce_area();
    if (stage.count == STAGE_CAP)
        flush_stage();
    struct record *r = &stage.records[stage.count];
    r->pid = r->tid = 0;
    r->type = type;
    r->sub = 0;
    r->seq = 0;
    return r;
}

/* A forked child starts with its own, empty area (a copy of the parent's
 * staged records would otherwise be reported twice). */
static void
stage_after_fork(void)
{
    stage.count = 0;
    stage_announced = 0;
}

static PyObject *
flush_staged(PyObject *self, PyObject *unused)
{
    /* A thread that has staged nothing yet announces its area here: a new
     * stream thread calls this first, so that a tracer follows it (its
     * waits for a CPU, its sleeps) from its first kernel on. */
    if (ENABLED(record_batch)) {
        announce_again_if_traced();
        announce_area();
    }
    flush_stage();
    Py_RETURN_NONE;
}

static void
stage_mem(uint16_t type, long long ts, long long addr, long long size, long long op,
          long long in_use)
{
    struct record *r = stage_record(type);
    r->ts = ts;
    r->a0 = addr;
    r->a1 = size;
    r->a2 = op;
    r->a3 = in_use;
    stage.count++;
}

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

INT_PROBE(kernel_launch, 3, STAP_PROBE3(msrt, kernel_launch, a[0], a[1], a[2]))
INT_PROBE(kernel_begin, 3, STAP_PROBE3(msrt, kernel_begin, a[0], a[1], a[2]))

/* device_init(rank, world_size, device_kind) */
static PyObject *
device_init(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long a[3];
    if (ints(args, nargs, 3, a, "device_init") < 0)
        return NULL;
    if (ENABLED(device_init)) {
        Py_BEGIN_ALLOW_THREADS
        STAP_PROBE3(msrt, device_init, a[0], a[1], a[2]);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

/* comm_begin/comm_end(kind, bytes, group, peer, seq), on one thread, one
 * collective at a time: the end is fired when the begin was. */
static __thread int comm_begin_fired;

static PyObject *
comm_begin(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    comm_begin_fired = 0;
    if (ENABLED(comm_begin)) {
        long long a[5];
        if (ints(args, nargs, 5, a, "comm_begin") < 0)
            return NULL;
        Py_BEGIN_ALLOW_THREADS
        STAP_PROBE5(msrt, comm_begin, a[0], a[1], a[2], a[3], a[4]);
        Py_END_ALLOW_THREADS
        comm_begin_fired = ENABLED(comm_end);
    }
    Py_RETURN_NONE;
}

static PyObject *
comm_end(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (ENABLED(comm_end) && comm_begin_fired) {
        long long a[5];
        if (ints(args, nargs, 5, a, "comm_end") < 0)
            return NULL;
        Py_BEGIN_ALLOW_THREADS
        STAP_PROBE5(msrt, comm_end, a[0], a[1], a[2], a[3], a[4]);
        Py_END_ALLOW_THREADS
    }
    comm_begin_fired = 0;
    Py_RETURN_NONE;
}


/* step_begin(step) / step_end(step, samples): the process's current step is
 * kept here too, for the kernels staged during it.  step_end also carries
 * the samples the step trained on (its share of the job's batch; 0 when
 * unknown), so that runs of different batch sizes compare by throughput.
 * A step's end is fired when its begin was.  A step_begin with op_register untraced means that a
 * tracer coming later will have missed what was announced before it. */
static int step_begin_fired;

static PyObject *
step_begin(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long a[1];
    if (ints(args, nargs, 1, a, "step_begin") < 0)
        return NULL;
    current_step = a[0];
    announce_again_if_traced();
    step_begin_fired = 0;
    if (ENABLED(step_begin)) {
        Py_BEGIN_ALLOW_THREADS
        STAP_PROBE1(msrt, step_begin, a[0]);
        Py_END_ALLOW_THREADS
        step_begin_fired = ENABLED(step_end);
    }
    Py_RETURN_NONE;
}

static PyObject *
step_end(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long a[2];
    if (ints(args, nargs, 2, a, "step_end") < 0)
        return NULL;
    current_step = -1;
    if (ENABLED(step_end) && step_begin_fired) {
        Py_BEGIN_ALLOW_THREADS
        STAP_PROBE2(msrt, step_end, a[0], a[1]);
        Py_END_ALLOW_THREADS
    }
    step_begin_fired = 0;
    Py_RETURN_NONE;
}

/* kernel_end(op_id, stream, seq, launch_ns, begin_ns): staged as a KERNEL
 * record ending now, and/or fired as its own probe. */
static PyObject *
kernel_end(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (ENABLED(record_batch) || ENABLED(kernel_end)) {
        long long a[5];
        if (ints(args, nargs, 5, a, "kernel_end") < 0)
            return NULL;
        if (ENABLED(record_batch)) {
            struct record *r = stage_record(EV_KERNEL);
            r->ts = now();
            r->sub = (uint16_t)a[1];
            r->seq = (uint32_t)a[2];
            r->a0 = a[0];
            r->a1 = a[3];
            r->a2 = a[4];
            r->a3 = current_step;
            stage.count++;
        }
        if (ENABLED(kernel_end)) {
            Py_BEGIN_ALLOW_THREADS
            STAP_PROBE5(msrt, kernel_end, a[0], a[1], a[2], a[3], a[4]);
            Py_END_ALLOW_THREADS
        }
    }
    Py_RETURN_NONE;
}

/* mem_alloc/mem_free(addr, size, op_id, in_use) */
#define MEM_PROBE(name, TYPE)                                                \
static PyObject *                                                            \
name(PyObject *self, PyObject *const *args, Py_ssize_t nargs)                \
{                                                                            \
    if (ENABLED(record_batch) || ENABLED(name)) {                            \
        long long a[4];                                                      \
        if (ints(args, nargs, 4, a, #name) < 0)                              \
            return NULL;                                                     \
        if (ENABLED(record_batch))                                           \
            stage_mem(TYPE, now(), a[0], a[1], a[2], a[3]);                  \
        if (ENABLED(name)) {                                                 \
            Py_BEGIN_ALLOW_THREADS                                           \
            STAP_PROBE4(msrt, name, a[0], a[1], a[2], a[3]);                 \
            Py_END_ALLOW_THREADS                                             \
        }                                                                    \
    }                                                                        \
    Py_RETURN_NONE;                                                          \
}

MEM_PROBE(mem_alloc, EV_MEM_ALLOC)
MEM_PROBE(mem_free, EV_MEM_FREE)

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
    if (ENABLED(record_batch) || ENABLED(mem_batch)) {
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
        if (ENABLED(record_batch)) {
            long long ts = now(), in_use = a[0];
            for (Py_ssize_t i = 0; i < n; i++) {
                int is_free = (a[1] >> i) & 1;
                long long size = a[3 + 3 * i];
                in_use += is_free ? -size : size;
                stage_mem(is_free ? EV_MEM_FREE : EV_MEM_ALLOC, ts, a[2 + 3 * i], size,
                          a[4 + 3 * i], in_use);
            }
        }
        if (ENABLED(mem_batch)) {
            long long count = n;
            Py_BEGIN_ALLOW_THREADS
            STAP_PROBE12(msrt, mem_batch, a[0], count, a[1], a[2], a[3], a[4], a[5], a[6],
                         a[7], a[8], a[9], a[10]);
            Py_END_ALLOW_THREADS
        }
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

/* set_announcer(fn): fn() fires device_init and every op_register again
 * for a tracer that came after them. */
static PyObject *
set_announcer(PyObject *self, PyObject *fn)
{
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "set_announcer() takes a callable or None");
        return NULL;
    }
    Py_XSETREF(announcer, fn == Py_None ? NULL : Py_NewRef(fn));
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
    return PyLong_FromLongLong(now());
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
    CHECK(record_batch)
#undef CHECK
    PyErr_Format(PyExc_KeyError, "no probe named %s", name);
    return NULL;
}

#define FAST(name, doc) {#name, (PyCFunction)(void (*)(void))name, METH_FASTCALL, doc}

static PyMethodDef methods[] = {
    FAST(device_init, "device_init(rank, world_size, device_kind)"),
    FAST(op_register, "op_register(op_id, graph_id, name, type, scope, flops, bytes)"),
    FAST(step_begin, "step_begin(step)"),
    FAST(step_end, "step_end(step, samples)"),
    FAST(kernel_launch, "kernel_launch(op_id, stream, seq)"),
    FAST(kernel_begin, "kernel_begin(op_id, stream, seq)"),
    FAST(kernel_end, "kernel_end(op_id, stream, seq, launch_ns, begin_ns)"),
    FAST(mem_alloc, "mem_alloc(addr, size, op_id, in_use)"),
    FAST(mem_free, "mem_free(addr, size, op_id, in_use)"),
    FAST(mem_batch, "mem_batch(in_use, frees, addr, size, op_id, ...): 1 to 3 pool events"),
    FAST(comm_begin, "comm_begin(kind, bytes, group, peer, seq)"),
    FAST(comm_end, "comm_end(kind, bytes, group, peer, seq)"),
    {"flush_staged", flush_staged, METH_NOARGS,
     "flush_staged(): hand this thread's staged records to the tracer (record_batch)"},
    FAST(noop, "noop(*args): does nothing (benchmark baseline)"),
    {"now_ns", now_ns, METH_NOARGS, "CLOCK_MONOTONIC in nanoseconds"},
    {"enabled", enabled, METH_O, "enabled(name): is the probe traced?"},
    {"set_announcer", set_announcer, METH_O,
     "set_announcer(fn): fn() announces the device and the operators again, for a tracer "
     "that attached after them"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_usdt",
    "USDT probe sites of the msprof runtime (provider msrt).", -1, methods,
};

PyMODINIT_FUNC
PyInit__usdt(void)
{
    static int forked_handler;
    if (!forked_handler) {
        pthread_atfork(NULL, NULL, stage_after_fork);
        forked_handler = 1;
    }
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "STAGE_CAP", STAGE_CAP) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
