/*
 * msprof's PyTorch shim: torch's RecordFunction callbacks and CPU allocator
 * reports, turned into msprof's staged records (probes/events.py layouts)
 * and handed to the tracer through the USDT probes of provider "msrt",
 * exactly as the runtime's native module (runtime/_usdt.c) does.
 *
 * Loaded only into processes that msprof launches (frameworks/torch/
 * bootstrap): PyTorch without msprof never sees it.  While nobody traces
 * `record_batch` (its semaphore is 0) every callback returns at once.
 *
 * What is recorded, per thread, staged 64 records at a time (one trap per
 * batch: a trap costs ~0.8 us here, a staged record ~0.13 us):
 *  - CPU_OP: every operator scope (aten ops, autograd nodes, optimizer
 *    steps, the DataLoader's __next__, user record_function scopes) with
 *    its begin, end, self time (its time minus its children's) and depth;
 *    its op id names (operator, scope): the nn.Module path pushed by the
 *    bootstrap's Module.__call__ wrapper, or for a backward node the scope of the
 *    forward op with the same autograd sequence number under "Gradients/";
 *  - STEP: a training step, from the first operator after the previous
 *    step (and after the last DataLoader __next__) to the end of the
 *    optimizer's step, or of a torch.profiler ProfilerStep#N in which no
 *    optimizer step ended; the time between is the loop's own (data
 *    loading, Python, logging);
 *  - MEM_ALLOC / MEM_FREE: the CPU allocator's blocks, through the
 *    memory-reporting hook torch.profiler's profile_memory uses (a
 *    disabled profiler state: see MemoryReporter);
 *  - COMM: each c10d collective, from its ParamCommsDebugInfo (kind, bytes,
 *    group, sequence number) or its async Work scope (kind, bytes, the
 *    issue number of its c10d operator).
 */
#include <torch/extension.h>
#include <ATen/record_function.h>
#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/csrc/distributed/c10d/ParamCommsUtils.hpp>
#include <torch/csrc/profiler/orchestration/observer.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <chrono>
#include <thread>
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#define SEMAPHORE(name) \
    __extension__ unsigned short msrt_##name##_semaphore \
    __attribute__((unused)) __attribute__((section(".probes"))) = 0;

extern "C" {
SEMAPHORE(device_init)
SEMAPHORE(op_register)
SEMAPHORE(record_batch)
}

#define ENABLED(name) __builtin_expect(msrt_##name##_semaphore, 0)

/* Without root (msprof's in-process backend) the shim writes the same
 * records into the backend's staging files itself: events-<pid>.bin and
 * meta-<pid>.bin (profiler/inprocess.py tails them). */
static int inproc_events = -1, inproc_meta = -1;
#define ACTIVE() (ENABLED(record_batch) || inproc_events >= 0)

namespace {

/* Record layout and type codes: probes/events.py (EVENT, 56 bytes). */
struct record {
    uint64_t ts;
    uint32_t pid, tid;          /* filled in by the tracer */
    uint16_t type, sub;
    uint32_t seq;
    int64_t a0, a1, a2, a3;
};
static_assert(sizeof(record) == 56, "EVENT layout");

constexpr uint16_t EV_MEM_ALLOC = 2, EV_MEM_FREE = 3, EV_STEP = 4, EV_COMM = 5,
                   EV_CPU_OP = 10;
constexpr int STAGE_CAP = 64;   /* probes/trace.c reads at most this many */
constexpr int64_t NO_STEP = -1;
constexpr int64_t DEVICE_TORCH_CPU = 1;   /* device_init's kind: PyTorch on a CPU */

struct stage {
    int64_t count;
    record records[STAGE_CAP];
};

int64_t now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noinline)) void fire_record_batch(stage *area, long long count) {
    STAP_PROBE2(msrt, record_batch, area, count);
}

__attribute__((noinline)) void fire_device_init(long long rank, long long world, long long kind) {
    STAP_PROBE3(msrt, device_init, rank, world, kind);
}

__attribute__((noinline)) void fire_op_register(long long op_id, long long graph_id,
                                                const char *name, const char *type,
                                                const char *scope, long long flops,
                                                long long bytes) {
    STAP_PROBE7(msrt, op_register, op_id, graph_id, name, type, scope, flops, bytes);
}

/* ---- per-thread staging --------------------------------------------------- */

struct Thread {
    stage area{};
    bool announced = false;
    int lane = -1;                    /* 0: the first thread that ran an op */
    struct Scope *top = nullptr;      /* innermost open scope of this thread */
    std::vector<int> modules;         /* nn.Module scope ids pushed by the hooks */

    void flush() {
        if (area.count && ENABLED(record_batch)) {
            fire_record_batch(&area, area.count);
        } else if (area.count && inproc_events >= 0) {
            uint32_t pid = (uint32_t)getpid(), tid = (uint32_t)syscall(SYS_gettid);
            for (int64_t i = 0; i < area.count; i++) {
                area.records[i].pid = pid;
                area.records[i].tid = tid;
            }
            /* One O_APPEND write per batch: whole records, never interleaved. */
            if (write(inproc_events, area.records, area.count * sizeof(record)) < 0) {
            }
        }
        area.count = 0;
    }
    record *next(uint16_t type) {
        if (!announced && inproc_events < 0) {
            fire_record_batch(&area, 0);
            announced = true;
        }
        if (area.count == STAGE_CAP)
            flush();
        record *r = &area.records[area.count++];
        std::memset(r, 0, sizeof(*r));
        r->type = type;
        return r;
    }
    ~Thread() { flush(); }
};

thread_local Thread self_thread;
std::atomic<int> next_lane{0};

Thread &me() {
    Thread &t = self_thread;
    if (t.lane < 0)
        t.lane = next_lane.fetch_add(1);
    return t;
}

/* ---- interning: scope paths and (operator, scope) pairs -> ids ----------- */

std::mutex intern_lock;
std::vector<std::string> scope_paths{""};             /* id 0: no scope */
std::unordered_map<std::string, int> scope_ids{{"", 0}};
std::unordered_map<std::string, int64_t> op_ids;
std::unordered_map<std::string, int64_t> group_ids;

/* probes/events.py META (320 bytes): what op_register and device_init
 * carry, for the in-process backend. */
struct meta_record {
    uint64_t ts;
    uint32_t pid, type;
    int64_t a0, a1, a2, a3;
    char name[64], optype[32], scope[176];
};
static_assert(sizeof(meta_record) == 320, "META layout");
constexpr uint32_t META_DEVICE_INIT = 1, META_OP_REGISTER = 2;

void write_meta(uint32_t type, int64_t a0, int64_t a1, int64_t a2, int64_t a3,
                const char *name, const char *optype, const char *scope) {
    meta_record m;
    std::memset(&m, 0, sizeof(m));
    m.ts = (uint64_t)now_ns();
    m.pid = (uint32_t)getpid();
    m.type = type;
    m.a0 = a0, m.a1 = a1, m.a2 = a2, m.a3 = a3;
    std::strncpy(m.name, name, sizeof(m.name) - 1);
    std::strncpy(m.optype, optype, sizeof(m.optype) - 1);
    std::strncpy(m.scope, scope, sizeof(m.scope) - 1);
    if (write(inproc_meta, &m, sizeof(m)) < 0) {
    }
}

int intern_scope_locked(const std::string &path) {
    auto it = scope_ids.find(path);
    if (it != scope_ids.end())
        return it->second;
    int id = (int)scope_paths.size();
    scope_paths.push_back(path);
    scope_ids.emplace(path, id);
    return id;
}

int intern_scope(const std::string &path) {
    std::lock_guard<std::mutex> g(intern_lock);
    return intern_scope_locked(path);
}

int64_t op_id_of(const char *name, int scope) {
    std::string key(name);
    key.push_back('\0');
    key.append(std::to_string(scope));
    std::lock_guard<std::mutex> g(intern_lock);
    auto it = op_ids.find(key);
    if (it != op_ids.end())
        return it->second;
    int64_t id = (int64_t)op_ids.size();
    op_ids.emplace(key, id);
    /* One trap per new (operator, scope): a few hundred in a run. */
    /* The scope ends in the operator, as the runtime's do
     * (net/conv1/Conv2D-op1): MLP/encoder/0/aten::addmm. */
    const std::string &module = scope_paths[scope];
    std::string path = module.empty() ? std::string(name) : module + "/" + name;
    if (ENABLED(op_register))
        fire_op_register(id, 0, name, name, path.c_str(), 0, 0);
    else if (inproc_meta >= 0)
        write_meta(META_OP_REGISTER, id, 0, 0, 0, name, name, path.c_str());
    return id;
}

/* A thread's (operator name, scope) -> op id, without the lock or a string
 * built per operator: op_id_of above cost ~120 ns of the ~360 ns a traced
 * operator cost (perf, an add loop).  First by the name's pointer (an
 * operator's schema name: stable), then by its content (a RecordFunction
 * that owns its name, as the autograd engine's "evaluate_function: ..."
 * wrappers do, has it at a new address each time), always checked by
 * content: a pointer may be reused for another name. */
struct OpCache {
    static constexpr size_t SLOTS = 1024;   /* power of two; a model has a few hundred */
    struct Slot {
        const char *ptr = nullptr;   /* by_ptr: the key; by_name: the pointer last seen */
        int scope = -1;
        uint64_t hash = 0;
        int64_t id = -1;
        std::string name;
    };
    std::vector<Slot> by_ptr{SLOTS}, by_name{SLOTS};

    static size_t mix(uint64_t x) { return (size_t)((x * 0x9E3779B97F4A7C15ull) >> 54) & (SLOTS - 1); }

    int64_t find(const char *name, int scope) {
        Slot &p = by_ptr[mix(((uintptr_t)name >> 3) ^ ((uint64_t)scope << 40))];
        if (p.ptr == name && p.scope == scope && std::strcmp(p.name.c_str(), name) == 0)
            return p.id;
        uint64_t h = 1469598103934665603ull ^ (uint64_t)scope;   /* FNV-1a */
        for (const char *c = name; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        Slot &n = by_name[mix(h)];
        if (n.hash == h && n.scope == scope && std::strcmp(n.name.c_str(), name) == 0) {
            /* The same name at the same address twice running: a stable
             * name, worth the pointer slot; a name that moves would only
             * evict the stable ones there. */
            if (n.ptr == name)
                p.ptr = name, p.scope = scope, p.id = n.id, p.name = n.name;
            n.ptr = name;
            return n.id;
        }
        int64_t id = op_id_of(name, scope);
        n.ptr = name, n.scope = scope, n.hash = h, n.id = id, n.name = name;
        return id;
    }
};

thread_local OpCache op_cache;

/* Fixed scopes, interned once (enable()). */
int gradients_scope = 0, optimizer_scope = 0, loader_scope = 0;

/* "Gradients/<forward scope>" per forward scope id, per thread: building
 * and interning the string per backward node cost a lock and two
 * allocations. */
thread_local std::unordered_map<int, int> grad_scopes;

int gradient_scope_of(int fwd) {
    auto it = grad_scopes.find(fwd);
    if (it != grad_scopes.end())
        return it->second;
    std::string path;
    {
        std::lock_guard<std::mutex> g(intern_lock);
        path = "Gradients/" + scope_paths[fwd];
    }
    int id = intern_scope(path);
    grad_scopes.emplace(fwd, id);
    return id;
}

/* Forward scope of each autograd sequence number, for its backward node.
 * A ring: a backward node runs within a step of its forward op, and a
 * step has far fewer than RING autograd nodes (an MLP step: ~20). */
constexpr size_t RING = 1 << 16;
struct Fwd { int64_t seq; int scope; };
Fwd fwd_scopes[RING];

/* ---- steps ---------------------------------------------------------------- */

std::mutex step_lock;
int64_t step_number = 0;        /* the step the loop is in or about to begin */
std::atomic<int64_t> step_begin{-1};   /* the first op after the previous step (-1: none yet) */
int64_t last_step_end = -1;
int64_t loader_end = -1;        /* the end of the last DataLoader __next__ */
int64_t steps_ended = 0;        /* steps staged so far */
std::atomic<int64_t> current_step{NO_STEP};

/* ---- one open scope ------------------------------------------------------- */

/* A collective's issue number, carried from the thread that issues it (its
 * c10d::<collective> operator, in the order c10d requires of every rank) to
 * the backend's worker thread that runs it.  gloo runs two Works at once on
 * two worker threads, so numbering a Work where it starts to run gave two
 * buckets of one DDP step their numbers in either order on different ranks.
 * c10d hands a Work's RecordFunction to the worker with the issuing
 * thread's thread-local state (at::wrapPropagateTLSState), this debug info
 * included. */
constexpr std::string_view ISSUE_NAME = "msprof.collective_issue";
const c10::DebugInfoKind ISSUE_KIND(&ISSUE_NAME);
std::atomic<int64_t> live_issues{0};   /* IssueInfo objects not yet destroyed: see settle() */

struct IssueInfo : c10::DebugInfoBase {
    int64_t seq;
    explicit IssueInfo(int64_t s) : seq(s) { live_issues++; }
    ~IssueInfo() override { live_issues--; }
};
std::atomic<int64_t> issue_seq{0};

struct Comm {
    bool valid = false;
    int kind = -1;
    int64_t bytes = 0, group = 0, seq = 0;
    int64_t step = NO_STEP;   /* the step it began in (it may end after) */
};

struct Scope : at::ObserverContext {
    int64_t begin = 0;
    int64_t child_ns = 0;
    int64_t op_id = -1;
    Scope *parent = nullptr;
    Thread *thread = nullptr;
    int scope = 0;
    int depth = 0;
    bool gradient = false;    /* in the backward pass (its scope is under Gradients) */
    enum Kind { OP, OPTIMIZER, LOADER, COMM_INFO, COMM_WORK, PROFILER_STEP } kind = OP;
    int64_t steps_before = 0;   /* a PROFILER_STEP's: steps_ended when it began */
    Comm comm;
    bool comm_done = false;   /* a COMM_INFO scope whose Work records the collective */
    std::unique_ptr<c10::DebugInfoGuard> issue;   /* a c10d operator's issue number, see IssueInfo */

    /* One per operator: recycled through the thread that frees it (a
     * malloc and a free per operator showed in perf). */
    static void *operator new(size_t n);
    static void operator delete(void *p);
};

struct FreeScopes {
    struct Node { Node *next; };
    Node *head = nullptr;
    int count = 0;
    static constexpr int CAP = 4096;   /* more than any nesting; a thread that only frees stops here */
    ~FreeScopes() {
        while (head) {
            Node *n = head;
            head = n->next;
            ::operator delete(n);
        }
    }
};
thread_local FreeScopes free_scopes;

void *Scope::operator new(size_t n) {
    FreeScopes &f = free_scopes;
    if (FreeScopes::Node *node = f.head) {
        f.head = node->next;
        f.count--;
        return node;
    }
    return ::operator new(n);
}

void Scope::operator delete(void *p) {
    FreeScopes &f = free_scopes;
    if (f.count >= FreeScopes::CAP) {
        ::operator delete(p);
        return;
    }
    auto *node = static_cast<FreeScopes::Node *>(p);
    node->next = f.head;
    f.head = node;
    f.count++;
}

/* Collective kinds: probes/events.py COMM_KINDS. */
int comm_kind(const std::string &name) {
    static const std::pair<const char *, int> kinds[] = {
        {"allreduce", 0}, {"allreduce_coalesced", 0}, {"allgather", 1},
        {"_allgather_base", 1}, {"allgather_into_tensor_coalesced", 1},
        {"allgather_coalesced", 1}, {"reduce_scatter", 2}, {"_reduce_scatter_base", 2},
        {"reduce_scatter_tensor_coalesced", 2}, {"broadcast", 3}, {"send", 4},
        {"recv", 5}, {"recvAnySource", 5}, {"barrier", 6}, {"alltoall", 7},
        {"alltoall_base", 7}, {"reduce", 8}, {"gather", 9}, {"scatter", 10},
    };
    for (auto &k : kinds)
        if (name == k.first)
            return k.second;
    return 11;   /* "unknown" */
}

template <size_t N>
bool starts_with(const char *s, const char (&prefix)[N]) {
    return std::strncmp(s, prefix, N - 1) == 0;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction &fn) {
    if (!ACTIVE())
        return nullptr;
    if (fn.isAsync())       /* a c10d Work: on_work_start records it */
        return nullptr;
    const char *name = fn.name();
    /* record_function's own enter/exit ops: the user scope they open and
     * close outlives the one and encloses the other (torch.profiler hides
     * them too). */
    if (name[0] == 'p' && starts_with(name, "profiler::_record_function"))
        return nullptr;
    Thread &t = me();
    auto s = std::make_unique<Scope>();
    s->thread = &t;
    /* torch.profiler's ProfilerStep#N, from one prof.step() to the next:
     * no operator (its own time is the loop's Python) and no one's parent,
     * but a step of its own where no optimizer step ends inside it (a loop
     * without torch.optim, profiled with a schedule). */
    if (fn.scope() == at::RecordScope::USER_SCOPE && name[0] == 'P' &&
        starts_with(name, "ProfilerStep#")) {
        s->kind = Scope::PROFILER_STEP;
        std::lock_guard<std::mutex> g(step_lock);
        s->steps_before = steps_ended;
        s->begin = now_ns();
        return s;
    }
    Scope *parent = t.top;
    s->parent = parent;
    s->depth = parent ? parent->depth + 1 : 0;
    /* An autograd node has its forward operator's sequence number. */
    bool engine = name[0] == 'a' && starts_with(name, "autograd::engine::evaluate_function");
    bool backward = fn.seqNr() >= 0 && (fn.scope() == at::RecordScope::BACKWARD_FUNCTION || engine);
    if (engine && !backward) {
        /* The engine's wrapper around a node, with no sequence number of
         * its own: the backward pass's, the node inside names the module. */
        s->scope = gradients_scope;
        s->gradient = true;
    } else if (backward) {
        const Fwd &f = fwd_scopes[(size_t)fn.seqNr() % RING];
        int fwd = f.seq == fn.seqNr() ? f.scope : 0;
        if (fwd)
            s->scope = gradient_scope_of(fwd);
        else if (parent && parent->gradient)
            s->scope = parent->scope;   /* a node inside a node: its module's */
        else
            s->scope = gradients_scope;
        s->gradient = true;
    } else if (!t.modules.empty()) {
        s->scope = t.modules.back();
    } else if (parent) {
        s->scope = parent->scope;
        s->gradient = parent->gradient;
    }
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
        if (starts_with(name, "Optimizer.step#")) {
            s->kind = Scope::OPTIMIZER;
            s->scope = optimizer_scope;
        } else if (starts_with(name, "enumerate(DataLoader)#")) {
            s->kind = Scope::LOADER;
            s->scope = loader_scope;
        }
    }
    if (name[0] == 'r' && std::strcmp(name, "record_param_comms") == 0) {
        s->kind = Scope::COMM_INFO;
        auto *info = dynamic_cast<torch::ParamCommsDebugInfo *>(
            c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PARAM_COMMS_INFO));
        if (info) {
            s->comm.valid = true;
            s->comm.kind = comm_kind(info->getCollectiveName());
            s->comm.bytes = info->getInMessageNelems() * (int64_t)c10::elementSize(info->getDType());
            s->comm.step = current_step.load();
            s->comm.seq = info->getSequenceNumber();
            std::lock_guard<std::mutex> g(intern_lock);
            auto key = info->getProcessGroupName();
            auto it = group_ids.find(key);
            if (it == group_ids.end())
                it = group_ids.emplace(key, (int64_t)group_ids.size()).first;
            s->comm.group = it->second;
        }
    }
    if (name[0] == 'c' && starts_with(name, "c10d::"))
        s->issue = std::make_unique<c10::DebugInfoGuard>(
            ISSUE_KIND, std::make_shared<IssueInfo>(issue_seq.fetch_add(1)));
    if (!backward && fn.seqNr() >= 0)
        fwd_scopes[(size_t)fn.seqNr() % RING] = Fwd{fn.seqNr(), s->scope};
    s->op_id = op_cache.find(name, s->scope);
    s->begin = now_ns();
    /* The first operator after a step opens the next one: checked without
     * the lock on every top-level operator, taken once a step. */
    if (s->depth == 0 && s->kind != Scope::LOADER && t.lane == 0 &&
        step_begin.load(std::memory_order_relaxed) < 0) {
        std::lock_guard<std::mutex> g(step_lock);
        if (step_begin.load(std::memory_order_relaxed) < 0) {
            step_begin.store(s->begin, std::memory_order_relaxed);
            current_step.store(step_number);
        }
    }
    t.top = s.get();
    return s;
}

/* The collective a c10d Work title names ("gloo:all_reduce"). */
int work_kind(const char *title) {
    const char *colon = std::strchr(title, ':');
    std::string name;
    for (const char *c = colon ? colon + 1 : title; *c; c++)
        if (*c != '_')
            name.push_back(*c);
    if (name == "reducescatter")
        name = "reduce_scatter";
    return comm_kind(name);
}

void stage_comm(Thread &t, const Comm &c, int64_t begin, int64_t end);

/* A c10d Work (asynchronous: with gloo it begins and ends on the backend's
 * worker thread, around the collective's execution).  Its RecordFunction
 * carries the collective's tensors: this callback, on user scopes only (a
 * few per step), asks for inputs; the operators' callback does not. */
std::unique_ptr<at::ObserverContext> on_work_start(const at::RecordFunction &fn) {
    if (!ACTIVE() || !fn.isAsync())
        return nullptr;
    auto s = std::make_unique<Scope>();
    s->begin = now_ns();
    s->kind = Scope::COMM_WORK;
    s->comm.valid = true;
    s->comm.kind = work_kind(fn.name());
    /* Issue order: the same on every rank of a group (c10d requires it);
     * a Work issued other than through a c10d operator is numbered here. */
    auto *issued = dynamic_cast<IssueInfo *>(c10::ThreadLocalDebugInfo::get(ISSUE_KIND));
    s->comm.seq = issued ? issued->seq : issue_seq.fetch_add(1);
    s->comm.step = current_step.load();
    int64_t bytes = 0;
    for (const c10::IValue &v : fn.needsInputs() ? fn.inputs() : c10::ArrayRef<const c10::IValue>()) {
        if (v.isTensor()) {
            bytes += (int64_t)v.toTensor().nbytes();
        } else if (v.isTensorList()) {
            for (const at::Tensor &x : v.toTensorList().vec())
                bytes += (int64_t)x.nbytes();
        }
    }
    s->comm.bytes = bytes;
    /* A backend that also records its ParamCommsDebugInfo (record_param_comms
     * around the Work) names the group and its own sequence number. */
    Scope *info = me().top;
    if (info && info->kind == Scope::COMM_INFO && info->comm.valid) {
        s->comm = info->comm;
        info->comm_done = true;
    }
    return s;
}

void on_work_end(const at::RecordFunction &, at::ObserverContext *ctx) {
    if (!ctx)
        return;
    auto *s = static_cast<Scope *>(ctx);
    stage_comm(me(), s->comm, s->begin, now_ns());
}

void stage_comm(Thread &t, const Comm &c, int64_t begin, int64_t end) {
    record *r = t.next(EV_COMM);
    r->ts = end;
    r->sub = (uint16_t)c.kind;
    r->seq = (uint32_t)c.seq;
    r->a0 = begin;
    r->a1 = c.bytes;
    r->a2 = (c.group << 32) | (uint32_t)-1;   /* a group collective: no peer */
    r->a3 = c.step;
}

/* Ends the step the loop is in at `end` (under step_lock): it began with
 * the first operator after the previous step, or after the last DataLoader
 * __next__ if that came later, so the time between steps is the loop's own. */
void end_step(Thread &t, int64_t first, int64_t end) {
    int64_t begin = step_begin.load() < 0 ? first : step_begin.load();
    if (loader_end > begin && loader_end > last_step_end)
        begin = loader_end;
    record *st = t.next(EV_STEP);
    st->ts = end;
    st->a0 = begin;
    st->a3 = step_number;
    last_step_end = end;
    step_begin = -1;
    step_number++;
    steps_ended++;
    current_step.store(NO_STEP);
    t.flush();
}

void on_end(const at::RecordFunction &, at::ObserverContext *ctx) {
    if (!ctx)
        return;
    auto *s = static_cast<Scope *>(ctx);
    int64_t end = now_ns();
    Thread &t = me();
    if (s->kind == Scope::PROFILER_STEP) {
        std::lock_guard<std::mutex> g(step_lock);
        if (steps_ended == s->steps_before && step_begin.load() >= 0)
            end_step(t, s->begin, end);
        return;
    }
    int64_t dur = end - s->begin;
    if (s->parent)
        s->parent->child_ns += dur;
    /* Scopes end in the reverse order they began, but a scope that ends
     * before one it encloses (a user scope closed from the inside) must
     * not be left as anyone's parent. */
    if (t.top == s) {
        t.top = s->parent;
    } else {
        for (Scope *c = t.top; c; c = c->parent) {
            if (c->parent == s) {
                c->parent = s->parent;
                break;
            }
        }
    }
    record *r = t.next(EV_CPU_OP);
    r->ts = end;
    r->sub = (uint16_t)(t.lane == 0 ? 0 : t.lane + 1);   /* stream 1 is communication's */
    r->seq = (uint32_t)s->depth;
    r->a0 = s->op_id;
    r->a1 = dur - s->child_ns;
    r->a2 = s->begin;
    r->a3 = s->kind == Scope::LOADER ? NO_STEP : current_step.load();
    if (s->kind == Scope::COMM_INFO && s->comm.valid && !s->comm_done)
        stage_comm(t, s->comm, s->begin, end);
    if (s->kind == Scope::LOADER && s->depth == 0) {
        std::lock_guard<std::mutex> g(step_lock);
        loader_end = end;
    }
    if (s->kind == Scope::OPTIMIZER && s->depth == 0) {
        std::lock_guard<std::mutex> g(step_lock);
        end_step(t, s->begin, end);
    }
}

/* ---- CPU allocator -------------------------------------------------------- */

/* c10 hands every CPU allocation and free to the MemoryReportingInfoBase
 * kept under the PROFILER_STATE debug-info kind.  PyTorch reads whatever
 * sits there as a torch.profiler state (ProfilerStateBase::get() is a
 * static_cast): a custom autograd.Function's apply, and so every
 * torch.compile'd module, asks it whether a profiler wants input shapes.
 * A bare MemoryReportingInfoBase there was read past its end (std::bad_alloc
 * from the script), so the reporter is a ProfilerStateBase whose profiler
 * is disabled: PyTorch sees none running, the allocator still reports. */
struct MemoryReporter : torch::profiler::impl::ProfilerStateBase {
    MemoryReporter()
        : ProfilerStateBase(torch::profiler::impl::ProfilerConfig(
              torch::profiler::impl::ProfilerState::Disabled)) {}
    torch::profiler::impl::ActiveProfilerType profilerType() override {
        return torch::profiler::impl::ActiveProfilerType::NONE;
    }
    bool memoryProfilingEnabled() const override { return ACTIVE(); }
    void reportMemoryUsage(void *ptr, int64_t alloc_size, size_t total_allocated,
                           size_t, c10::Device device) override {
        if (!ACTIVE() || device.type() != c10::DeviceType::CPU || alloc_size == 0)
            return;
        Thread &t = me();
        record *r = t.next(alloc_size > 0 ? EV_MEM_ALLOC : EV_MEM_FREE);
        r->ts = now_ns();
        r->a0 = (int64_t)(uintptr_t)ptr;
        r->a1 = alloc_size > 0 ? alloc_size : -alloc_size;
        r->a2 = t.top ? t.top->op_id : -1;
        r->a3 = (int64_t)total_allocated;
    }
};

std::mutex enable_lock;
bool enabled = false;
at::CallbackHandle callback = 0, work_callback = 0;

/* ---- what the bootstrap calls --------------------------------------------- */

void enable(int64_t rank, int64_t world, const std::string &inprocess_dir) {
    std::lock_guard<std::mutex> g(enable_lock);
    if (enabled)
        return;
    enabled = true;
    gradients_scope = intern_scope("Gradients");
    optimizer_scope = intern_scope("Optimizer");
    loader_scope = intern_scope("DataLoader");
    if (!inprocess_dir.empty() && !ENABLED(record_batch)) {
        std::string pid = std::to_string(getpid());
        int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
        inproc_events = open((inprocess_dir + "/events-" + pid + ".bin").c_str(), flags, 0600);
        inproc_meta = open((inprocess_dir + "/meta-" + pid + ".bin").c_str(), flags, 0600);
        if (inproc_events < 0 || inproc_meta < 0)
            throw std::runtime_error("cannot open the in-process backend's files in " + inprocess_dir);
    }
    if (ENABLED(device_init))
        fire_device_init(rank, world, DEVICE_TORCH_CPU);
    else if (inproc_meta >= 0)
        write_meta(META_DEVICE_INIT, rank, world, DEVICE_TORCH_CPU, 0, "", "", "");
    callback = at::addGlobalCallback(
        at::RecordFunctionCallback(on_start, on_end).needsInputs(false).needsIds(false));
    work_callback = at::addGlobalCallback(
        at::RecordFunctionCallback(on_work_start, on_work_end)
            .needsInputs(true)
            .scopes({at::RecordScope::USER_SCOPE}));
    c10::ThreadLocalDebugInfo::_push(c10::DebugInfoKind::PROFILER_STATE,
                                     std::make_shared<MemoryReporter>());
}

void disable() {
    std::lock_guard<std::mutex> g(enable_lock);
    if (!enabled)
        return;
    at::removeCallback(callback);
    at::removeCallback(work_callback);
    enabled = false;
    self_thread.flush();
}

/* torch.profiler keeps its own state under the same debug-info kind (and
 * PyTorch versions that check for any state there, not an enabled one,
 * refuse to start beside it): the bootstrap steps the memory reporter
 * aside while a torch.profiler runs (its window's CPU memory then goes to
 * torch.profiler, not to msprof). */
bool memory_paused = false;

void pause_memory() {
    std::lock_guard<std::mutex> g(enable_lock);
    if (!enabled || memory_paused)
        return;
    auto *top = c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE);
    if (top && dynamic_cast<MemoryReporter *>(top)) {
        c10::ThreadLocalDebugInfo::_pop(c10::DebugInfoKind::PROFILER_STATE);
        memory_paused = true;
    }
}

void resume_memory() {
    std::lock_guard<std::mutex> g(enable_lock);
    if (!enabled || !memory_paused)
        return;
    if (!c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE)) {
        c10::ThreadLocalDebugInfo::_push(c10::DebugInfoKind::PROFILER_STATE,
                                         std::make_shared<MemoryReporter>());
        memory_paused = false;
    }
}

bool traced() { return ACTIVE(); }

int scope_id(const std::string &path) { return intern_scope(path); }

void push_module(int scope) { me().modules.push_back(scope); }

void pop_module() {
    Thread &t = me();
    if (!t.modules.empty())
        t.modules.pop_back();
}

void flush() { self_thread.flush(); }

/* At exit, before the interpreter finalizes: wait (without the GIL) until
 * the backend's worker threads have let go of every Work this process
 * issued, at most `timeout_s`; the Works still held.
 *
 * While any RecordFunction callback is registered (this shim's, or
 * torch.profiler's), gloo keeps the issuing thread's whole thread-local
 * state in each Work, Python objects included.  The worker drops a Work
 * after running it and needs the GIL for those objects; if the script
 * has already ended, the interpreter is finalizing, the worker's GIL
 * request ends its thread inside a destructor, and the process aborts
 * ("terminate called without an active exception": 1 run in 5-45 of a
 * 2-rank torchrun job here).  A Work's issue number (IssueInfo) lives in
 * that same state, so it goes when the Work goes. */
int64_t settle(double timeout_s) {
    py::gil_scoped_release no_gil;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (live_issues.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return live_issues.load();
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "msprof's PyTorch shim: RecordFunction scopes, steps, CPU memory and "
              "c10d collectives as staged msprof records (USDT provider msrt)";
    m.def("enable", &enable, "register the callbacks and announce the rank",
          py::arg("rank"), py::arg("world"), py::arg("inprocess_dir") = "");
    m.def("disable", &disable);
    m.def("traced", &traced, "whether a tracer holds record_batch");
    m.def("scope_id", &scope_id, "the id of an nn.Module scope path");
    m.def("push_module", &push_module);
    m.def("pop_module", &pop_module);
    m.def("flush", &flush, "hand this thread's staged records over");
    m.def("collectives_held", []() { return live_issues.load(); },
          "how many of this process's collectives a Work still holds");
    m.def("settle", &settle, "wait until the backends' workers let go of this process's "
          "collectives (at exit); how many they still hold", py::arg("timeout_s"));
    m.def("pause_memory", &pause_memory, "step aside for torch.profiler");
    m.def("resume_memory", &resume_memory);
}
