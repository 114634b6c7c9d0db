/*
 * msprof trace program: one record per executed kernel, step, collective and
 * memory operation of every process in the profiled tree.
 *
 * Loaded by msprof.profiler.ebpf; the collector prepends the record layouts
 * (msprof.probes.events.c_header()), the #defines below marked "set by the
 * loader", and one usdt_<probe>() entry point per attached probe that reads
 * the probe's arguments into s64 a[] and calls handle_<probe>(ctx, a).
 *
 * Set by the loader: EVENT_RING_PAGES, META_RING_PAGES, MAX_TRACED, and
 * SUMMARY_MODE in summary mode (kernels and pool events folded into
 * per-operator aggregates here instead of emitted).
 *
 * Cost matters (each hit runs on the training's hot path):
 *  - records go to a ring buffer without a wakeup; the collector drains it on
 *    a 10 ms timer and decodes whole batches at once;
 *  - begin/end pairs are joined here (step, comm); kernels and pool events
 *    come staged: the runtime writes them as finished records in a
 *    per-thread area and one record_batch hit hands over up to STAGE_CAP of
 *    them (a thread that exits with records still staged has them read at
 *    its exit, SIGKILL included);
 *  - a record that finds the ring full is counted in `lost`, never dropped
 *    silently;
 *  - the scheduler tracepoints return at once for any thread but the
 *    runtime's own (a hash lookup).
 */
#include <uapi/linux/ptrace.h>

BPF_RINGBUF_OUTPUT(events, EVENT_RING_PAGES);
BPF_RINGBUF_OUTPUT(meta, META_RING_PAGES);

/* Lost records, by cause (see LOST_* below and msprof.profiler.ebpf). */
#define LOST_EVENT_RING 0
#define LOST_META_RING 1
#define LOST_UNPAIRED 2
#define LOST_PAIR_MAP 3
#define LOST_STAGED 4      /* staged records that could not be read */
#define LOST_CPU_TIME 5    /* on-CPU slices of a thread the on_cpu map had no room for */
#define LOST_SUMMARY 6     /* summary mode: kernels or pool events an aggregate had no room for */
BPF_ARRAY(lost, u64, 7);

/* Processes (tgids) of the profiled tree, by the pid the kernel uses (the
 * root PID namespace's): the collector itself (see claim_collector), and
 * every process forked by a traced one. */
BPF_HASH(traced, u32, u8, MAX_TRACED);

/* The collector as its own PID namespace sees it: that namespace's nsfs
 * device and inode, and its pid there (os.getpid()).  Inside a container
 * that pid is not the kernel's, so the collector cannot seed `traced`
 * itself: its next clone() (a thread it starts for that purpose) is
 * recognised here with bpf_get_ns_current_pid_tgid, and its kernel pid
 * recorded, in `traced` and in global_pid for the collector to read. */
struct collector_id { u64 dev; u64 ino; u32 ns_pid; u32 global_pid; };
BPF_ARRAY(collector, struct collector_id, 1);

/* Staging areas of the runtime's threads (record_batch): thread id -> the
 * area's address in that thread's process, and the process. */
struct stage_ref { u64 area; u32 pid; };
BPF_HASH(stages, u32, struct stage_ref, MAX_TRACED * 4);

/* Threads of the runtime (those in `stages`) that are runnable but not
 * running: thread id -> since when (woken, or switched out still runnable). */
BPF_HASH(runnable, u32, u64, MAX_TRACED * 4);

/* Threads of the runtime asleep (switched out waiting on a lock, the GIL,
 * I/O): thread id -> since when. */
BPF_HASH(asleep, u32, u64, MAX_TRACED * 4);

/* Runtime threads (those in `stages`) on a CPU now: thread id -> since when. */
BPF_HASH(running, u32, u64, MAX_TRACED * 4);

/* Time each runtime thread spent on each CPU, read by the collector when
 * the run ends (the cpu_time table): a rank on a slower core than the
 * others shows there. */
struct cpu_key { u32 tid; u32 cpu; };
struct cpu_use { u64 ns; u32 pid; };
BPF_HASH(on_cpu, struct cpu_key, struct cpu_use, MAX_TRACED * 16);

/* Records one record_batch hit reads at most: the runtime's STAGE_CAP. */
#define STAGE_CAP 64
#define STAGE_RECORD_BYTES 56   /* sizeof(struct msprof_event) */

/* Current step of a process: its number and begin time. */
struct step_state { u64 begin; s64 step; };
BPF_HASH(steps, u32, struct step_state, MAX_TRACED);

/* Open collectives, keyed by process, kind and sequence number. */
struct comm_key { u32 pid; u32 kind; s64 seq; };
BPF_HASH(open_comms, struct comm_key, u64, 65536);

/* Processes whose begins this program has seen (bit 0: a step's, bit 1: a
 * collective's).  An end that comes before any begin of its kind is from
 * a step or collective begun before the probes came (msprof attach to a
 * process another tracer holds: its probes fire ends for that tracer), not
 * a lost event. */
#define BEGUN_STEP 1
#define BEGUN_COMM 2
BPF_HASH(begun, u32, u8, MAX_TRACED);

static __always_inline u32 traced_pid(void)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    return traced.lookup(&pid) ? pid : 0;
}

static __always_inline void count_lost(int cause)
{
    lost.atomic_increment(cause);
}

static __always_inline void note_begun(u32 pid, u8 kind)
{
    u8 *was = begun.lookup(&pid);
    u8 now = (was ? *was : 0) | kind;
    if (!was || *was != now)
        begun.update(&pid, &now);
}

static __always_inline void count_unpaired(u32 pid, u8 kind)
{
    u8 *was = begun.lookup(&pid);
    if (was && (*was & kind))
        count_lost(LOST_UNPAIRED);
}

static __always_inline s64 current_step(u32 pid)
{
    struct step_state *s = steps.lookup(&pid);
    return s ? s->step : -1;
}

/* A zeroed record of thread `tid` of process `pid`, stamped `ts`. */
static __always_inline struct msprof_event *reserve_for(u32 pid, u32 tid, u16 type, u64 ts)
{
    struct msprof_event *e = events.ringbuf_reserve(sizeof(struct msprof_event));
    if (!e) {
        count_lost(LOST_EVENT_RING);
        return 0;
    }
    e->ts = ts;
    e->pid = pid;
    e->tid = tid;
    e->type = type;
    e->sub = 0;
    e->seq = 0;
    e->a0 = e->a1 = e->a2 = e->a3 = 0;
    return e;
}

/* A zeroed record of the current thread, stamped now. */
static __always_inline struct msprof_event *reserve(u32 pid, u16 type)
{
    return reserve_for(pid, (u32)bpf_get_current_pid_tgid(), type, bpf_ktime_get_ns());
}

/* The slice runtime thread `tid` (of process `pid`) has run on this CPU
 * until `now`, added to its time on this CPU. */
static __always_inline void account_on_cpu(u32 tid, u32 pid, u64 now)
{
    u64 *since = running.lookup(&tid);
    if (!since)
        return;
    u64 ran = now - *since;
    running.delete(&tid);
    struct cpu_key k = {.tid = tid, .cpu = bpf_get_smp_processor_id()};
    struct cpu_use zero = {.ns = 0, .pid = pid};
    struct cpu_use *u = on_cpu.lookup_or_try_init(&k, &zero);
    if (u)
        u->ns += ran;      /* only this thread, switched out on this CPU, writes it */
    else
        count_lost(LOST_CPU_TIME);
}

#ifdef SUMMARY_MODE
/* Summary mode: kernels and pool events are folded here, per operator,
 * instead of travelling one by one (the collector reads the maps when the
 * run ends; layouts in msprof.probes.events KERNEL_STATS/MEMORY_STATS). */
#define SUMMARY_ENTRIES 65536   /* (process, stream, operator) aggregates */
struct kernel_key {
    u32 pid;
    u32 stream;
    s64 op_id;
};
struct kernel_stats {
    u64 calls, total_ns, min_ns, max_ns;
    u64 hist[HIST_BUCKETS];     /* bucket b: 2^(b-1) <= ns < 2^b (the last: longer too) */
};
struct memory_key {
    u32 pid;
    u32 pad;
    s64 op_id;
};
struct memory_stats {
    u64 allocs, alloc_bytes, frees, freed_bytes, peak_in_use;
};
/* Entries are allocated as operators appear (a preallocated map this size
 * would pin ~150 MB of kernel memory for a few hundred operators). */
BPF_F_TABLE("hash", struct kernel_key, struct kernel_stats, kernel_stats, SUMMARY_ENTRIES,
            BPF_F_NO_PREALLOC);
BPF_F_TABLE("hash", struct memory_key, struct memory_stats, memory_stats, SUMMARY_ENTRIES,
            BPF_F_NO_PREALLOC);
/* A new kernel aggregate starts from this value: too big for the stack. */
BPF_PERCPU_ARRAY(kernel_stats_init, struct kernel_stats, 1);
/* The staged record being folded: in map memory, not on the stack, so the
 * verifier need not tell apart the states of 64 loop turns by its bytes. */
BPF_PERCPU_ARRAY(staged_record, struct msprof_event, 1);

static __always_inline u32 bit_length(u64 v)
{
    u32 n = 0;
    if (v >> 32) { v >>= 32; n += 32; }
    if (v >> 16) { v >>= 16; n += 16; }
    if (v >> 8) { v >>= 8; n += 8; }
    if (v >> 4) { v >>= 4; n += 4; }
    if (v >> 2) { v >>= 2; n += 2; }
    if (v >> 1) { v >>= 1; n += 1; }
    return n + (u32)v;
}

/* One kernel of process `pid`.  Only the stream's own thread writes its
 * aggregate, so min and max need no atomics; counts use them anyway. */
static __always_inline void fold_kernel(u32 pid, struct msprof_event *e,
                                        struct kernel_stats *init)
{
    struct kernel_key k = {.pid = pid, .stream = e->sub, .op_id = e->a0};
    struct kernel_stats *st = kernel_stats.lookup_or_try_init(&k, init);
    if (!st) {
        count_lost(LOST_SUMMARY);
        return;
    }
    u64 ns = e->ts > (u64)e->a2 ? e->ts - (u64)e->a2 : 0;
    if (e->type == EV_CPU_OP)     /* a framework's operator: its self time */
        ns = e->a1 > 0 ? (u64)e->a1 : 0;
    /* The bucket goes through map memory and back: the verifier then sees
     * one unknown index, not bit_length's 64 paths each with its own
     * range (which it would otherwise walk apart for all 64 records). */
    *(volatile u32 *)&e->seq = bit_length(ns);
    u32 b = *(volatile u32 *)&e->seq;
    if (b >= HIST_BUCKETS)
        b = HIST_BUCKETS - 1;
    __sync_fetch_and_add(&st->calls, 1);
    __sync_fetch_and_add(&st->total_ns, ns);
    __sync_fetch_and_add(&st->hist[b], 1);
    if (ns < st->min_ns)
        st->min_ns = ns;
    if (ns > st->max_ns)
        st->max_ns = ns;
}

/* One pool event; a free carries the op that allocated the block. */
static __always_inline void fold_memory(u32 pid, struct msprof_event *e)
{
    struct memory_key k = {.pid = pid, .pad = 0, .op_id = e->a2};
    struct memory_stats zero = {};
    struct memory_stats *st = memory_stats.lookup_or_try_init(&k, &zero);
    if (!st) {
        count_lost(LOST_SUMMARY);
        return;
    }
    if (e->type == EV_MEM_ALLOC) {
        __sync_fetch_and_add(&st->allocs, 1);
        __sync_fetch_and_add(&st->alloc_bytes, (u64)e->a1);
        if ((u64)e->a3 > st->peak_in_use)
            st->peak_in_use = e->a3;
    } else {
        __sync_fetch_and_add(&st->frees, 1);
        __sync_fetch_and_add(&st->freed_bytes, (u64)e->a1);
    }
}
#endif

/* Copy `count` staged records from the area at `area` (current process) to
 * the event ring, stamped with the process and thread; in summary mode the
 * kernels and pool events among them are folded instead (the others, none
 * today, still go to the ring). */
static __always_inline void emit_staged(u32 pid, u32 tid, u64 area, s64 count)
{
    if (count > STAGE_CAP) {
        lost.atomic_increment(LOST_STAGED, count - STAGE_CAP);
        count = STAGE_CAP;
    }
    const char *records = (const char *)(area + 8);
#ifdef SUMMARY_MODE
    int zero = 0;
    struct msprof_event *rec = staged_record.lookup(&zero);
    struct kernel_stats *init = kernel_stats_init.lookup(&zero);  /* a new aggregate's value */
    if (!rec || !init)
        return;
    init->min_ns = ~0ULL;
#endif
    for (int i = 0; i < STAGE_CAP; i++) {
        if (i >= count)
            break;
#ifdef SUMMARY_MODE
        if (bpf_probe_read_user(rec, sizeof(*rec), records + i * STAGE_RECORD_BYTES)) {
            count_lost(LOST_STAGED);
            continue;
        }
        if (rec->type == EV_KERNEL || rec->type == EV_CPU_OP) {
            fold_kernel(pid, rec, init);
        } else if (rec->type == EV_MEM_ALLOC || rec->type == EV_MEM_FREE) {
            fold_memory(pid, rec);
        } else {
            rec->pid = pid;
            rec->tid = tid;
            if (events.ringbuf_output(rec, sizeof(*rec), BPF_RB_NO_WAKEUP))
                count_lost(LOST_EVENT_RING);
        }
#else
        struct msprof_event *e = events.ringbuf_reserve(sizeof(struct msprof_event));
        if (!e) {
            count_lost(LOST_EVENT_RING);
            continue;
        }
        if (bpf_probe_read_user(e, sizeof(*e), records + i * STAGE_RECORD_BYTES)) {
            events.ringbuf_discard(e, BPF_RB_NO_WAKEUP);
            count_lost(LOST_STAGED);
            continue;
        }
        e->pid = pid;
        e->tid = tid;
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
#endif
    }
}

static __always_inline struct msprof_meta *reserve_meta(u32 pid, u32 type)
{
    struct msprof_meta *m = meta.ringbuf_reserve(sizeof(struct msprof_meta));
    if (!m) {
        count_lost(LOST_META_RING);
        return 0;
    }
    m->ts = bpf_ktime_get_ns();
    m->pid = pid;
    m->type = type;
    m->a0 = m->a1 = m->a2 = m->a3 = 0;
    m->name[0] = m->optype[0] = m->scope[0] = 0;
    return m;
}

/* ---- process tree ------------------------------------------------------ */

static __always_inline void claim_collector(void)
{
    int zero = 0;
    struct collector_id *c = collector.lookup(&zero);
    if (!c || c->global_pid || !c->ino)
        return;
    struct bpf_pidns_info ns = {};
    if (bpf_get_ns_current_pid_tgid(c->dev, c->ino, &ns, sizeof(ns)) || ns.tgid != c->ns_pid)
        return;   /* a task of another namespace, or another process of it */
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u8 one = 1;
    traced.update(&pid, &one);
    c->global_pid = pid;
}

TRACEPOINT_PROBE(task, task_newtask)
{
    claim_collector();
    if (args->clone_flags & 0x00010000)  /* CLONE_THREAD: not a new process */
        return 0;
    u32 parent = traced_pid();
    if (!parent)
        return 0;
    u32 child = args->pid;
    u8 one = 1;
    traced.update(&child, &one);
    struct msprof_meta *m = reserve_meta(parent, META_PROCESS_FORK);
    if (m) {
        m->a0 = child;
        meta.ringbuf_submit(m, BPF_RB_NO_WAKEUP);
    }
    return 0;
}

/* How a traced process ends: the status it passed to exit_group(), else the
 * last signal sent to it (a process killed by a signal never calls it). */
BPF_HASH(exit_codes, u32, s64, MAX_TRACED);
BPF_HASH(signals, u32, s64, MAX_TRACED);

TRACEPOINT_PROBE(syscalls, sys_enter_exit_group)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    s64 code = args->error_code & 0xff;
    exit_codes.update(&pid, &code);
    return 0;
}

TRACEPOINT_PROBE(signal, signal_generate)
{
    u32 target = args->pid;
    if (args->result != 0 || !traced.lookup(&target))
        return 0;
    s64 sig = args->sig;
    signals.update(&target, &sig);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    /* Records a thread staged and did not hand over: this kernel runs the
     * tracepoint before the thread lets go of its memory. */
    struct stage_ref *ref = stages.lookup(&tid);
    runnable.delete(&tid);
    asleep.delete(&tid);
    if (ref) {
        account_on_cpu(tid, pid, bpf_ktime_get_ns());   /* its last slice */
        u64 at = ref->area;
        s64 count = 0;
        if (bpf_probe_read_user(&count, sizeof(count), (void *)at))
            count_lost(LOST_STAGED);
        else if (count > 0)
            emit_staged(pid, tid, at, count);
        stages.delete(&tid);
    }
    if (tid != pid || !traced.lookup(&pid))  /* only a process's last word */
        return 0;
    struct msprof_event *e = reserve(pid, EV_EXIT);
    if (e) {
        s64 *code = exit_codes.lookup(&pid);
        s64 *sig = signals.lookup(&pid);
        e->a0 = code ? *code : -1;
        e->a1 = sig ? *sig : 0;
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    steps.delete(&pid);
    begun.delete(&pid);
    exit_codes.delete(&pid);
    signals.delete(&pid);
    traced.delete(&pid);
    return 0;
}

/* ---- waiting for a CPU ------------------------------------------------- */

/* A runtime thread that is runnable but not running: woken and not yet
 * on a CPU, or switched out while still runnable (preempted, or yielded).
 * Each such wait becomes an EV_CPU_WAIT record when the thread gets a CPU
 * again, marked when that CPU was idle until then (pid 0 switched out): a
 * wait behind other threads and processes competing for the cores, or
 * only the latency of an idle CPU waking up (on a VM, tens of us).  The
 * sleep before a wake-up (switched out waiting on something) becomes an
 * EV_BLOCKED record when the thread is woken. */
TRACEPOINT_PROBE(sched, sched_wakeup)
{
    u32 tid = args->pid;
    struct stage_ref *ref = stages.lookup(&tid);
    if (!ref)
        return 0;
    u64 now = bpf_ktime_get_ns();
    runnable.update(&tid, &now);
    u64 *since = asleep.lookup(&tid);
    if (!since)
        return 0;
    u64 begin = *since;
    asleep.delete(&tid);
    struct msprof_event *e = reserve_for(ref->pid, tid, EV_BLOCKED, now);
    if (e) {
        e->a0 = begin;
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    return 0;
}

TRACEPOINT_PROBE(sched, sched_switch)
{
    u32 prev = args->prev_pid, next = args->next_pid;
    u64 now = bpf_ktime_get_ns();
    /* prev_state: 0 runnable (a yield), 0x100 preempted (runnable too);
     * any state bit in the low byte means it went to sleep or died. */
    struct stage_ref *pref = stages.lookup(&prev);
    if (pref) {
        account_on_cpu(prev, pref->pid, now);
        if ((args->prev_state & 0xff) == 0)
            runnable.update(&prev, &now);
        else
            asleep.update(&prev, &now);
    }
    struct stage_ref *ref = stages.lookup(&next);
    if (!ref)
        return 0;
    running.update(&next, &now);
    u64 *since = runnable.lookup(&next);
    if (!since)
        return 0;
    u64 begin = *since;
    runnable.delete(&next);
    struct msprof_event *e = reserve_for(ref->pid, next, EV_CPU_WAIT, now);
    if (e) {
        e->sub = prev == 0;     /* the CPU was idle: the wait was its waking up */
        e->a0 = begin;
        e->a1 = bpf_get_smp_processor_id();
        e->a2 = bpf_get_current_pid_tgid() >> 32;   /* the process that held the CPU */
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    return 0;
}

/* ---- runtime probes (provider msrt) ------------------------------------ */

static __always_inline int handle_device_init(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct msprof_meta *m = reserve_meta(pid, META_DEVICE_INIT);
    if (m) {
        m->a0 = a[0];
        m->a1 = a[1];
        m->a2 = a[2];
        meta.ringbuf_submit(m, BPF_RB_NO_WAKEUP);
    }
    return 0;
}

static __always_inline int handle_op_register(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct msprof_meta *m = reserve_meta(pid, META_OP_REGISTER);
    if (!m)
        return 0;
    m->a0 = a[0];
    m->a1 = a[1];
    m->a2 = a[5];
    m->a3 = a[6];
    bpf_probe_read_user_str(m->name, sizeof(m->name), (void *)a[2]);
    bpf_probe_read_user_str(m->optype, sizeof(m->optype), (void *)a[3]);
    bpf_probe_read_user_str(m->scope, sizeof(m->scope), (void *)a[4]);
    meta.ringbuf_submit(m, BPF_RB_NO_WAKEUP);
    return 0;
}

static __always_inline int handle_step_begin(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct step_state s = {.begin = bpf_ktime_get_ns(), .step = a[0]};
    steps.update(&pid, &s);
    note_begun(pid, BEGUN_STEP);
    return 0;
}

static __always_inline int handle_step_end(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct step_state *s = steps.lookup(&pid);
    if (!s) {
        count_unpaired(pid, BEGUN_STEP);
        return 0;
    }
    struct msprof_event *e = reserve(pid, EV_STEP);
    if (e) {
        e->seq = a[0];
        e->a0 = s->begin;
        e->a1 = a[1];               /* samples */
        e->a3 = s->step;
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    steps.delete(&pid);
    return 0;
}

static __always_inline int handle_kernel_launch(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct msprof_event *e = reserve(pid, EV_KERNEL_LAUNCH);
    if (e) {
        e->a0 = a[0];
        e->sub = a[1];
        e->seq = a[2];
        e->a3 = current_step(pid);
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    return 0;
}

static __always_inline int handle_kernel_end(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct msprof_event *e = reserve(pid, EV_KERNEL);
    if (e) {
        e->a0 = a[0];          /* op id */
        e->sub = a[1];         /* stream */
        e->seq = a[2];
        e->a1 = a[3];          /* launch ns */
        e->a2 = a[4];          /* begin ns */
        e->a3 = current_step(pid);
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    return 0;
}

static __always_inline int mem_event(s64 *a, u16 type)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct msprof_event *e = reserve(pid, type);
    if (e) {
        e->a0 = a[0];
        e->a1 = a[1];
        e->a2 = a[2];
        e->a3 = a[3];
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    return 0;
}

static __always_inline int handle_mem_alloc(struct pt_regs *ctx, s64 *a)
{
    return mem_event(a, EV_MEM_ALLOC);
}

static __always_inline int handle_mem_free(struct pt_regs *ctx, s64 *a)
{
    return mem_event(a, EV_MEM_FREE);
}

/* mem_batch(in_use, n, frees, addr0, size0, op0, addr1, size1, op1, addr2,
 * size2, op2): n pool events in one hit, each a MEM_ALLOC or MEM_FREE record
 * as mem_alloc/mem_free would write it (bit i of frees: event i is a free);
 * in_use is the pool's bytes in use before the first. */
static __always_inline int handle_mem_batch(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    s64 in_use = a[0];
#pragma unroll
    for (int i = 0; i < 3; i++) {
        if (i >= a[1])
            break;
        int free = (a[2] >> i) & 1;
        s64 size = a[4 + 3 * i];
        in_use += free ? -size : size;
        struct msprof_event *e = reserve(pid, free ? EV_MEM_FREE : EV_MEM_ALLOC);
        if (e) {
            e->a0 = a[3 + 3 * i];
            e->a1 = size;
            e->a2 = a[5 + 3 * i];
            e->a3 = in_use;
            events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
        }
    }
    return 0;
}

/* record_batch(area, count): `count` finished records staged by this thread
 * at `area` (struct stage: s64 count, then the records); count 0 announces
 * the thread's area. */
static __always_inline int handle_record_batch(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    u32 tid = bpf_get_current_pid_tgid();
    u64 area = a[0];
    if (a[1] == 0) {
        struct stage_ref ref = {.area = area, .pid = pid};
        stages.update(&tid, &ref);
        u64 now = bpf_ktime_get_ns();
        running.insert(&tid, &now);        /* on a CPU since at least now */
        return 0;
    }
    emit_staged(pid, tid, area, a[1]);
    return 0;
}

/* comm_begin/comm_end(kind, bytes, group, peer, seq) */
static __always_inline int handle_comm_begin(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct comm_key k = {.pid = pid, .kind = a[0], .seq = a[4]};
    u64 now = bpf_ktime_get_ns();
    if (open_comms.update(&k, &now))
        count_lost(LOST_PAIR_MAP);
    note_begun(pid, BEGUN_COMM);
    return 0;
}

static __always_inline int handle_comm_end(struct pt_regs *ctx, s64 *a)
{
    u32 pid = traced_pid();
    if (!pid)
        return 0;
    struct comm_key k = {.pid = pid, .kind = a[0], .seq = a[4]};
    u64 *begin = open_comms.lookup(&k);
    if (!begin) {
        count_unpaired(pid, BEGUN_COMM);
        return 0;
    }
    struct msprof_event *e = reserve(pid, EV_COMM);
    if (e) {
        e->sub = a[0];
        e->seq = a[4];
        e->a0 = *begin;
        e->a1 = a[1];
        e->a2 = (a[2] << 32) | (u32)a[3];   /* group, peer */
        e->a3 = current_step(pid);
        events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    open_comms.delete(&k);
    return 0;
}
