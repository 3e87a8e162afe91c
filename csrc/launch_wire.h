/* launch_wire.h: what landgate (csrc/launch.c) and the init program (csrc/lginit.c)
 * share: the sync socket's message, the exit codes of a failed set-up, and the spec's
 * wire form.  Internal (not a cffi interface).
 *
 * The wire form: lg_spawn writes the lg_spawn_spec as one flat blob into a sealed
 * memfd, which the child inherits across its execve of the init program.  The blob is
 * a header (scalars and, per array, an offset and a count) followed by the arrays:
 * string lists as `count` NUL-terminated strings packed from `off`, number arrays as
 * `count` 8-byte little-endian-native words at an 8-aligned `off`.  The decoder checks
 * every offset, count and terminator against the blob's size before it builds a
 * pointer: a malformed blob is ERROR("spec: ...") to landgate, never a wild read.
 */
#ifndef LANDGATE_LAUNCH_WIRE_H
#define LANDGATE_LAUNCH_WIRE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "launch_api.h"

#define LG_EXIT_SETUP 125
#define LG_EXIT_CANNOT_EXEC 126
#define LG_EXIT_NOT_FOUND 127

enum lg_msg_kind {
    LG_MSG_PID = 1,
    LG_MSG_LISTENER = 2,
    LG_MSG_ERROR = 3,
    LG_MSG_EXEC_FAILED = 4,
    LG_MSG_STATUS = 5,
    LG_MSG_RULESET = 6, /* the agent's Landlock ruleset fd number (the open check's opener) */
};

struct lg_msg {
    int kind;
    int err;   /* errno for ERROR / EXEC_FAILED; skipped Landlock paths for LISTENER */
    int value; /* listener fd number, wait status */
    char step[48];
};

static inline void lg_copy_step(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < n; i++)
        dst[i] = src[i];
    dst[i] = '\0';
}

/* write(2), not sendmsg(2): after the filter is installed sendmsg is supervised.
 * Async-signal-safe (it also runs in the clone that shares landgate's memory). */
static inline void lg_send_msg(int sock, int kind, int err, int value, const char *step)
{
    struct lg_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.err = err;
    m.value = value;
    lg_copy_step(m.step, sizeof m.step, step);
    ssize_t n;
    do {
        n = write(sock, &m, sizeof m);
    } while (n < 0 && errno == EINTR);
    /* Nothing more to do if the parent is gone: the process exits next anyway. */
}

/* ---- the spec's wire form ------------------------------------------------ */

#define LG_WIRE_MAGIC 0x3153474cU /* "LGS1" */
#define LG_WIRE_VERSION 1U
/* Far beyond any policy (the coding-agent preset's spec is ~10 KiB); bounds what
 * the init program reads and allocates. */
#define LG_WIRE_MAX (16U << 20)
/* The kernel's BPF_MAXINSNS: a longer filter is refused by seccomp anyway. */
#define LG_WIRE_MAX_INSNS 4096U
/* Bounds the init program's own /dev step (fds opened before the tmpfs hides them). */
#define LG_DEV_MAX 64

struct lg_wire_list {
    uint32_t off;
    uint32_t count;
};

struct lg_wire_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t size; /* the whole blob, header included */
    int32_t landgate_pid;
    int32_t ns_flags, map_uid, map_gid, mount_proc, memfd_noexec, netns_fd;
    int32_t stdio_fds[3];
    int32_t minimal_dev, landlock_abi;
    uint32_t filter_flags;
    uint64_t ll_handled_fs, ll_handled_net, ll_scoped;
    struct lg_wire_list path, argv, envp, cwd, dev_paths, bind_src, bind_dst, ll_paths;
    struct lg_wire_list ll_access, ll_ports, ll_port_access, filter;
};

/* lg_wire_encode: declared in launch_api.h (tests feed its blobs to the init program). */

/* Read the blob from memfd (sealed against writes and size changes) into memory of
 * its own and point *spec into it.  0, or -errno with *step naming what is wrong. */
int lg_wire_decode_fd(int memfd, struct lg_spawn_spec *spec, int *landgate_pid,
                      const char **step);

/* This thread into a new network namespace with only `lo`, up: the loopback-only
 * namespace, made by init (csrc/lginit.c) or ahead of time by landgate for the next
 * session (csrc/launch.c, on a thread of its own).  0, or -errno with *step naming the
 * failing call. */
int lg_wire_loopback_netns(const char **step);

#endif
