"""The seccomp filter's tables: x86_64 syscall numbers, what is refused and why, flag bits."""

from __future__ import annotations

import errno as E

# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
SYSCALLS: dict[str, int] = {
    "open": 2,
    "ioctl": 16,
    "socket": 41,
    "connect": 42,
    "sendto": 44,
    "sendmsg": 46,
    "clone": 56,
    "execve": 59,
    "truncate": 76,
    "rename": 82,
    "mkdir": 83,
    "link": 86,
    "symlink": 88,
    "creat": 85,
    "ptrace": 101,
    "mknod": 133,
    "personality": 135,
    "pivot_root": 155,
    "chroot": 161,
    "acct": 163,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "init_module": 175,
    "delete_module": 176,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "openat": 257,
    "mkdirat": 258,
    "mknodat": 259,
    "renameat": 264,
    "linkat": 265,
    "symlinkat": 266,
    "unshare": 272,
    "perf_event_open": 298,
    "open_by_handle_at": 304,
    "sendmmsg": 307,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "finit_module": 313,
    "renameat2": 316,
    "kexec_file_load": 320,
    "bpf": 321,
    "execveat": 322,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "openat2": 437,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
    "open_tree_attr": 467,
}

# (syscall, errno, attack it stops).  EPERM where a program should see "not
# allowed"; ENOSYS where libraries probe and fall back (io_uring, clone3).
PLAIN_DENIES: tuple[tuple[str, int, str], ...] = (
    ("io_uring_setup", E.ENOSYS, "io_uring performs opens/connects/sends the filter never sees"),
    ("io_uring_enter", E.ENOSYS, "io_uring: submits operations that bypass the filter"),
    ("io_uring_register", E.ENOSYS, "io_uring: registers files/buffers for filter-blind I/O"),
    ("ptrace", E.EPERM, "tracing another process rewrites its syscalls after the check"),
    ("process_vm_readv", E.EPERM, "reads another process's memory (keys, tokens)"),
    ("process_vm_writev", E.EPERM, "writes another process's memory (the supervisor's argv race)"),
    ("pidfd_getfd", E.EPERM, "steals open file descriptors from another process"),
    ("bpf", E.EPERM, "loads kernel programs; kernel attack surface"),
    ("userfaultfd", E.EPERM, "stalls kernel copies to win races (TOCTOU amplifier)"),
    ("perf_event_open", E.EACCES, "kernel attack surface, side channels"),
    ("kexec_load", E.EPERM, "replaces the running kernel (root agents)"),
    ("kexec_file_load", E.EPERM, "replaces the running kernel (root agents)"),
    ("init_module", E.EPERM, "loads kernel code (root agents)"),
    ("finit_module", E.EPERM, "loads kernel code (root agents)"),
    ("delete_module", E.EPERM, "unloads kernel modules (root agents)"),
    ("keyctl", E.ENOSYS, "reads the session keyring's secrets (kernel keys are not files)"),
    ("add_key", E.ENOSYS, "kernel keyring attack surface"),
    ("request_key", E.ENOSYS, "kernel keyring: upcalls run programs outside the sandbox"),
    (
        "mount",
        E.EPERM,
        "a new view of the filesystem (over a protected path, or hiding what the supervisor sees)",
    ),
    ("umount2", E.EPERM, "unmounting changes the view the supervisor resolves opens in"),
    ("pivot_root", E.EPERM, "replaces the root the Landlock rules were resolved in"),
    ("chroot", E.EPERM, "path games against the supervisor's path resolution (root agents)"),
    ("open_tree", E.EPERM, "new mount API: clones a tree into another view"),
    ("open_tree_attr", E.EPERM, "new mount API (6.15): clones a tree into another view"),
    ("move_mount", E.EPERM, "new mount API: moves a mount"),
    ("fsopen", E.EPERM, "new mount API: mounts a fresh filesystem"),
    ("fsconfig", E.EPERM, "new mount API"),
    ("fsmount", E.EPERM, "new mount API"),
    ("fspick", E.EPERM, "new mount API: reconfigures an existing mount"),
    ("mount_setattr", E.EPERM, "makes a read-only mount writable"),
    ("setns", E.EPERM, "joins another namespace (the host's network, another mount view)"),
    (
        "open_by_handle_at",
        E.EPERM,
        (
            "opens an inode by file handle, bypassing the open check and Landlock's paths "
            "(CAP_DAC_READ_SEARCH: root agents)"
        ),
    ),
    ("clone3", E.ENOSYS, "its flags live in memory BPF cannot read: libc falls back to clone"),
    ("swapon", E.EPERM, "root agents: host storage"),
    ("swapoff", E.EPERM, "root agents: host storage"),
    ("reboot", E.EPERM, "root agents: host availability"),
    ("acct", E.EPERM, "root agents: writes process accounting to any file"),
)

# Namespace bits of clone(2)/unshare(2) flags (sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080  # unshare only: in clone(2) the low byte is the exit signal
CLONE_NS_FLAGS = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
)
UNSHARE_NS_FLAGS = CLONE_NS_FLAGS | CLONE_NEWTIME
# Memory-sharing bits (sched.h): which processes can write an exec's argv.
CLONE_VM = 0x00000100
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000

TIOCSTI = 0x5412
TIOCLINUX = 0x541C
AT_EMPTY_PATH = 0x1000
PERSONALITY_QUERY = 0xFFFFFFFF

O_ACCMODE, O_RDONLY, O_TRUNC = 0o3, 0o0, 0o1000
# Open flags that can change a file or make a name: such an open goes to the supervisor
# whenever a write deny or a protected path reaches a writable grant.  O_WRONLY, O_RDWR,
# O_CREAT, O_TRUNC, O_APPEND, __O_TMPFILE (x86_64 values).
OPEN_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000 | 0o20000000
# O_PATH: the kernel ignores every other open flag but O_DIRECTORY/O_NOFOLLOW/O_CLOEXEC;
# the fd reads and writes nothing, and reopening it (/proc/self/fd/N) is an open that is
# judged.  Left to the kernel: SECCOMP_IOCTL_NOTIF_ADDFD cannot inject an O_PATH file.
O_PATH = 0o10000000

AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
ALLOWED_FAMILIES = (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK)

# Always supervised: program executions and outbound connections / sends.
NOTIFY_ALWAYS = ("execve", "execveat", "connect", "sendto", "sendmsg", "sendmmsg")
# Supervised when the open check is needed (a deny or protected path reaches a grant;
# simulation): open/openat only for the flags that need a decision (see seccomp.py).
NOTIFY_OPEN = ("open", "openat", "openat2", "creat")
# Supervised when a protected path or a file_write deny lies inside a writable grant: the
# syscalls that make, move or empty a name without opening it (csrc/supervise_fsop.c
# performs them).  Opens that create are NOTIFY_OPEN's; unlink/rmdir never need a decision.
NOTIFY_FSOP: dict[str, str] = {
    "rename": "makes a name: judged as file_write of the real destination",
    "renameat": "makes a name: judged as file_write of the real destination",
    "renameat2": "makes a name (RENAME_EXCHANGE: two): file_write of each real destination",
    "link": "makes a name for an object: file_write of the destination, the object's identity",
    "linkat": "makes a name for an object: file_write of the destination, the object's identity",
    "symlink": "makes a name: file_write of the real destination",
    "symlinkat": "makes a name: file_write of the real destination",
    "mkdir": "makes a directory: refused inside a protected directory",
    "mkdirat": "makes a directory: refused inside a protected directory",
    "mknod": "makes a name (FIFO, socket, file): file_write of the real destination",
    "mknodat": "makes a name (FIFO, socket, file): file_write of the real destination",
    "truncate": "empties a file by path: file_write of the object (real path, device+inode)",
}
