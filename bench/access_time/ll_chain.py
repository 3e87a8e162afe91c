"""Landlock alone: protect one path inside a writable tree by granting the tree by children.

Landlock only adds rights, and a right granted on a directory covers everything beneath it,
so "home writable except ~/.config/git/config" is expressed as: every directory on the chain
home -> .config -> git gets read rights only, and every OTHER child of those directories gets
the full rights.  The rules needed are the siblings along the chain: O(depth x fan-out), not
O(tree).  What it cannot do: a chain directory has no MAKE_* right, so nothing new can be
created directly in ~, ~/.config or ~/.config/git (a new ~/notes.txt is refused), and a
protected path that does not exist yet has no chain below its deepest existing ancestor.

    ll_chain.py ROOT REL    build the ruleset for ROOT/REL, then check it in a child
"""

import ctypes
import json
import os
import struct
import sys
import time

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
NR_CREATE_RULESET, NR_ADD_RULE, NR_RESTRICT_SELF = 444, 445, 446
RULE_PATH_BENEATH = 1
ALL_FS = (1 << 16) - 1  # ABI 5+: execute .. ioctl_dev
READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read_file, read_dir
FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # on a file: no dir rights


def _check(rc, what):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return rc


def _add(rs, path, rights):
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
        _check(_libc.syscall(NR_ADD_RULE, rs, RULE_PATH_BENEATH, attr, 0), f"add_rule {path}")
    finally:
        os.close(fd)


def build_by_children(root, rel, rs_out=None):
    """(rules, seconds) for a ruleset granting ROOT fully except the chain to ROOT/REL."""
    t0 = time.perf_counter()
    attr = ctypes.create_string_buffer(struct.pack("=Q", ALL_FS), 8)
    rs = _check(_libc.syscall(NR_CREATE_RULESET, attr, 8, 0), "create_ruleset")
    rules, d = 0, root
    parts = rel.strip("/").split("/")
    for i, name in enumerate(parts):
        _add(rs, d, READ)  # the chain directory: readable, nothing created or removed in it
        rules += 1
        with os.scandir(d) as it:
            for entry in it:
                if entry.name != name:
                    _add(rs, entry.path, ALL_FS)
                    rules += 1
        d = os.path.join(d, name)
        if not os.path.exists(d):
            break  # the protected path does not exist yet: the chain stops here
        if i == len(parts) - 1:
            _add(rs, d, READ)
            rules += 1
    dt = time.perf_counter() - t0
    if rs_out is not None:
        rs_out.append(rs)
    else:
        os.close(rs)
    return rules, dt


def make_home(root, n):
    """A home with 30 dotfiles, ~/.config with 20 apps, ~/.config/git/config, and n files
    in a project tree (the part a launch-time walk would have to visit)."""
    os.makedirs(os.path.join(root, ".config", "git"), exist_ok=True)
    for i in range(30):
        with open(os.path.join(root, f".dot{i}"), "w") as f:
            f.write("x")
    for i in range(20):
        os.makedirs(os.path.join(root, ".config", f"app{i}"), exist_ok=True)
    with open(os.path.join(root, ".config", "git", "config"), "w") as f:
        f.write("[user]\n\tname = me\n")
    for i in range(n):
        d = os.path.join(root, "project", f"d{i // 500}")
        if i % 500 == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "w"):
            pass


def check(root, rel):
    """Restrict a child with the ruleset; try the protected write and its twins."""
    holder = []
    build_by_children(root, rel, holder)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _libc.prctl(38, 1, 0, 0, 0)
        _check(_libc.syscall(NR_RESTRICT_SELF, holder[0], 0), "restrict_self")
        out = {}
        for name, path, flags in [
            ("write the protected file", os.path.join(root, rel), os.O_WRONLY),
            ("read the protected file", os.path.join(root, rel), os.O_RDONLY),
            ("write a sibling dotfile", os.path.join(root, ".dot0"), os.O_WRONLY),
            ("create in a granted sibling dir", os.path.join(root, ".config/app0/new"), 0o101),
            ("create a new file directly in the home", os.path.join(root, "new.txt"), 0o101),
        ]:
            try:
                os.close(os.open(path, flags, 0o644))
                out[name] = "ok"
            except OSError as e:
                out[name] = os.strerror(e.errno)
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    os.close(holder[0])
    return json.loads(os.read(r, 65536))


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1], sys.argv[2]), indent=1))
