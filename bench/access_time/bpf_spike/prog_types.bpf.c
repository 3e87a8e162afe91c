// SPDX-License-Identifier: GPL-2.0
/* prog_types.bpf.c: one trivial program per attach type, to see which ones the running
 * kernel lets root load (MEASURED.md, "BPF LSM open gate").  prog_types.c loads each alone. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";
struct file;
struct bpf_iter__task;

SEC("lsm/file_open")
int BPF_PROG(t_lsm, struct file *f) { return 0; }
SEC("lsm.s/file_open")
int BPF_PROG(t_lsm_sleepable, struct file *f) { return 0; }
SEC("lsm_cgroup/file_open")
int BPF_PROG(t_lsm_cgroup, struct file *f) { return 1; }
SEC("fentry/do_sys_openat2")
int BPF_PROG(t_fentry, int dfd) { return 0; }
SEC("fexit/do_sys_openat2")
int BPF_PROG(t_fexit, int dfd) { return 0; }
SEC("fmod_ret/security_file_open")
int BPF_PROG(t_fmod_ret, struct file *f) { return 0; }
SEC("tp_btf/sched_process_fork")
int BPF_PROG(t_tp_btf, void *a, void *b) { return 0; }
SEC("raw_tp/sys_enter")
int t_raw_tp(void *ctx) { return 0; }
SEC("iter/task")
int t_iter(struct bpf_iter__task *ctx) { return 0; }
SEC("kprobe/do_sys_openat2")
int t_kprobe(void *ctx) { return 0; }
SEC("socket")
int t_socket(void *ctx) { return 0; }
