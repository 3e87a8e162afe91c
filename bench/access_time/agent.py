"""A scripted stand-in for the agent: one command per stdin line, one JSON result per line.

Run inside the sandbox under test (fan_gate, or any later gate); the driver outside
(attacks.py) acts on the workspace between commands.  Every result is
{"op": ..., "ok": bool, "errno": "EPERM"|..., "data": first bytes read}.
Only the standard library: it must import nothing from the workspace under test.
"""

import ctypes
import ctypes.util
import errno
import json
import os
import sys

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class _FileHandle(ctypes.Structure):
    _fields_ = [
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("f_handle", ctypes.c_ubyte * 128),
    ]


def _read(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        return os.read(fd, 64).decode(errors="replace")
    finally:
        os.close(fd)


def _by_handle(path, mount_dir):
    """name_to_handle_at + open_by_handle_at (needs CAP_DAC_READ_SEARCH).

    The reopened file's mount is the mount of mount_dir's fd, not the path's."""
    fh = _FileHandle(handle_bytes=128)
    mount_id = ctypes.c_int()
    if _libc.name_to_handle_at(-100, path.encode(), ctypes.byref(fh), ctypes.byref(mount_id), 0):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    mfd = os.open(mount_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = _libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_RDONLY)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    finally:
        os.close(mfd)
    try:
        return os.read(fd, 64).decode(errors="replace")
    finally:
        os.close(fd)


def _opath_reopen(path):
    fd = os.open(path, os.O_PATH)
    try:
        return _read(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _write(path, data, flags):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
    return ""


def run(cmd):
    op, *args = cmd
    if op == "read":
        return _read(args[0])
    if op == "opath_reopen":
        return _opath_reopen(args[0])
    if op == "handle":
        return _by_handle(args[0], args[1])
    if op == "write_trunc":
        return _write(args[0], args[1], os.O_WRONLY | os.O_TRUNC)
    if op == "create":
        return _write(args[0], args[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    if op == "rename":
        os.rename(args[0], args[1])
        return ""
    if op == "link":
        os.link(args[0], args[1])
        return ""
    if op == "symlink":
        os.symlink(args[0], args[1])
        return ""
    if op == "unlink":
        os.unlink(args[0])
        return ""
    if op == "mkdirs":
        os.makedirs(args[0], exist_ok=True)
        return ""
    if op == "chmod":
        os.chmod(args[0], int(args[1], 8))
        return ""
    if op == "stat":
        return str(os.stat(args[0]).st_size)
    raise ValueError(f"unknown op {op}")


def main():
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            out = {"op": cmd[0], "ok": True, "errno": None, "data": run(cmd)}
        except OSError as e:
            out = {"op": cmd[0], "ok": False, "errno": errno.errorcode.get(e.errno, str(e.errno))}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
