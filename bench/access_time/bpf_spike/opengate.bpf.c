// SPDX-License-Identifier: GPL-2.0
/* opengate.bpf.c: landgate's in-kernel open gate (BPF LSM, file_open).
 *
 * Read-only opens of a sandboxed task are decided here, in the opener's context,
 * on the object the kernel opened (struct file), without a round trip to the
 * supervisor:
 *   scope     a task-storage tag: the supervisor tags the sandbox's init through its
 *             pidfd before init forks; every fork and thread inherits it (task_alloc).
 *             An untagged task (the whole host) returns 0 after one lookup.
 *   identity  (dev, ino) in a hash map: the launch deny set, plus every object met
 *             under a denied name (learned here), so its other names stay denied.
 *   name      bpf_d_path of the opened file, walked through the policy's read DFA
 *             (the same rule numbers lg_judge_path reports).
 * A denial returns -EACCES and sends an event on the ring buffer; if the ring buffer
 * is full the denial still stands and a drop counter says so.  Opens that can write
 * (FMODE_WRITE) are the supervisor's: the seccomp filter sends them to its open check.
 *
 * Kernel structs are declared here, minimal, with preserve_access_index (CO-RE): the
 * build needs no vmlinux.h; libbpf relocates the offsets against the running
 * kernel's BTF at load time.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "opengate.h"

#define EACCES 13
#define FMODE_WRITE 0x2

struct task_struct {
    int pid;
    int tgid;
} __attribute__((preserve_access_index));

struct super_block {
    __u32 s_dev;
} __attribute__((preserve_access_index));

struct inode {
    unsigned long i_ino;
    struct super_block *i_sb;
    unsigned int i_nlink;
    __u32 i_generation;
} __attribute__((preserve_access_index));

struct path {
    void *mnt;
    void *dentry;
} __attribute__((preserve_access_index));

struct file {
    struct path f_path;
    struct inode *f_inode;
    unsigned int f_mode;
} __attribute__((preserve_access_index));

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct lg_gate_tag);
} lg_tags SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, LG_GATE_IDS);
    __type(key, struct lg_gate_id);
    __type(value, struct lg_gate_idval);
} lg_ids SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct lg_gate_dfa);
} lg_dfa SEC(".maps");

struct lg_scratch {
    char buf[LG_GATE_PATH_MAX];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct lg_scratch);
} lg_scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, LG_GATE_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} lg_counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} lg_events SEC(".maps");

static __always_inline void count(__u32 which)
{
    __u64 *c = bpf_map_lookup_elem(&lg_counts, &which);
    if (c)
        __sync_fetch_and_add(c, 1);
}

/* Copies the tag to every new task (fork and thread) of a tagged parent.  task_alloc
 * runs inside copy_process, before the child can run, so no child ever runs untagged. */
SEC("lsm/task_alloc")
int BPF_PROG(lg_task_alloc, struct task_struct *task, unsigned long clone_flags)
{
    struct lg_gate_tag *parent = bpf_task_storage_get(&lg_tags, bpf_get_current_task_btf(), 0, 0);
    if (!parent)
        return 0;
    struct lg_gate_tag *child = bpf_task_storage_get(&lg_tags, task, 0,
                                                     BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!child)
        return -12;  /* -ENOMEM: a child that cannot carry the tag is not created (fail closed) */
    child->session = parent->session;
    return 0;
}

struct walk_ctx {
    struct lg_gate_dfa *dfa;
    char *buf;
    __u32 state;
    __u32 len;
};

static long walk_step(__u32 i, void *data)
{
    struct walk_ctx *w = data;
    if (i >= w->len)
        return 1;
    unsigned char b = (unsigned char)w->buf[i & (LG_GATE_PATH_MAX - 1)];
    __u32 cls = w->dfa->classes[b];
    __u64 idx = (__u64)w->state * w->dfa->n_classes + cls;
    if (idx >= LG_GATE_DFA_TRANS) {
        w->state = (__u32)-1;  /* a corrupt table: the caller denies */
        return 1;
    }
    w->state = w->dfa->trans[idx];
    return 0;
}

static __always_inline int send_denial(struct file *file, __u32 why, int rule, const char *path,
                                       int path_len)
{
    count(LG_GATE_CNT_DENIED);
    struct lg_gate_event *ev = bpf_ringbuf_reserve(&lg_events, sizeof *ev, 0);
    if (!ev) {
        count(LG_GATE_CNT_DROPPED);  /* the denial stands; the supervisor reports the count */
        return -EACCES;
    }
    __u64 pt = bpf_get_current_pid_tgid();
    ev->tgid = pt >> 32;
    ev->tid = (__u32)pt;
    ev->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
    ev->ino = BPF_CORE_READ(file, f_inode, i_ino);
    ev->why = why;
    ev->rule = rule;
    ev->path_len = path_len;
    ev->path[0] = 0;
    if (path && path_len > 0) {
        __u32 n = (__u32)path_len;
        if (n > LG_GATE_EV_PATH - 1)
            n = LG_GATE_EV_PATH - 1;  /* truncated; path_len keeps the full length */
        asm volatile("" : "+r"(n));  /* keep the clamp in this register for the verifier */
        n &= LG_GATE_EV_PATH - 1;
        if (n > 0)
            bpf_probe_read_kernel(ev->path, n, path);
        ev->path[n] = 0;
    }
    bpf_ringbuf_submit(ev, 0);
    return -EACCES;
}

SEC("lsm/file_open")
int BPF_PROG(lg_file_open, struct file *file)
{
    struct lg_gate_tag *tag = bpf_task_storage_get(&lg_tags, bpf_get_current_task_btf(), 0, 0);
    if (!tag)
        return 0;  /* not a sandboxed task */
    if (BPF_CORE_READ(file, f_mode) & FMODE_WRITE)
        return 0;  /* can write: the supervisor's open check decided it (seccomp route) */
    count(LG_GATE_CNT_JUDGED);

    struct inode *inode = BPF_CORE_READ(file, f_inode);
    struct lg_gate_id id = {};
    id.dev = BPF_CORE_READ(inode, i_sb, s_dev);
    id.ino = BPF_CORE_READ(inode, i_ino);
    __u32 gen = BPF_CORE_READ(inode, i_generation);
    struct lg_gate_idval *known = bpf_map_lookup_elem(&lg_ids, &id);
    if (known) {
        if (!known->learned || known->gen == gen)
            return send_denial(file, LG_GATE_WHY_ID, known->rule, 0, 0);
        /* learned for an inode since freed and reused: a different object */
        bpf_map_delete_elem(&lg_ids, &id);
    }

    __u32 zero = 0;
    struct lg_gate_dfa *dfa = bpf_map_lookup_elem(&lg_dfa, &zero);
    if (!dfa || !dfa->enabled)
        return 0;
    struct lg_scratch *sc = bpf_map_lookup_elem(&lg_scratch, &zero);
    if (!sc)
        return send_denial(file, LG_GATE_WHY_DPATH, -1, 0, 0);
    long n = bpf_d_path(&file->f_path, sc->buf, LG_GATE_PATH_MAX);
    if (n == -36 /* ENAMETOOLONG */)
        return send_denial(file, LG_GATE_WHY_LONG, -1, 0, 0);
    if (n <= 0)
        return send_denial(file, LG_GATE_WHY_DPATH, -1, 0, 0);
    __u32 len = (__u32)n - 1;  /* n counts the NUL */
    if (len >= LG_GATE_PATH_MAX)
        return send_denial(file, LG_GATE_WHY_LONG, -1, 0, 0);

    /* An unlinked file's path ends in " (deleted)" (reopened through /proc/self/fd
     * after its last name was removed): judge the name it had. */
    if (BPF_CORE_READ(inode, i_nlink) == 0 && len > 10) {
        const char suffix[] = " (deleted)";
        int same = 1;
        for (int k = 0; k < 10; k++) {
            __u32 at = (len - 10 + k) & (LG_GATE_PATH_MAX - 1);
            if (sc->buf[at] != suffix[k])
                same = 0;
        }
        if (same)
            len -= 10;
    }

    struct walk_ctx w = {.dfa = dfa, .buf = sc->buf, .state = dfa->start, .len = len};
    bpf_loop(len, walk_step, &w, 0);
    if (w.state >= LG_GATE_DFA_STATES)
        return send_denial(file, LG_GATE_WHY_LONG, -1, sc->buf, len);
    int rule = dfa->accept[w.state & (LG_GATE_DFA_STATES - 1)];
    if (rule < 0)
        return 0;
    /* denied by name: the object joins the identity set, so a later hard link or
     * rename of it stays denied under any name */
    struct lg_gate_idval v = {.rule = rule, .gen = gen, .learned = 1};
    bpf_map_update_elem(&lg_ids, &id, &v, BPF_ANY);
    return send_denial(file, LG_GATE_WHY_NAME, rule, sc->buf, len);
}
