"""`which`, a private directory and its removal: what the launch path used shutil and
tempfile for, in a few os calls (issue 19).

Importing shutil (with bz2, lzma, fnmatch) and tempfile (with random, weakref, hashlib's
_sha512) cost every `landgate run` several milliseconds for three small jobs: find a
program on $PATH, make the hook channel's 0700 directory, remove it again.  Each function
here does exactly that job, and says where it differs from its stdlib twin.
"""

from __future__ import annotations

import os

# tempfile.gettempdir()'s candidates, in its order (without its last resort, the
# current directory: a session's socket does not belong in the user's work tree).
_TMP_ENV = ("TMPDIR", "TEMP", "TMP")
_TMP_DIRS = ("/tmp", "/var/tmp", "/usr/tmp")
_ATTEMPTS = 100  # names tried per directory before the next one (each is 48 random bits)


def which(cmd: str, path: str | None) -> str | None:
    """shutil.which(cmd, path=path) with its default mode (F_OK | X_OK), as Python 3.11
    has it on POSIX: a name with a slash is checked as it is; otherwise the first
    `path` entry (in order, each once) holding an executable non-directory `cmd`.  An
    empty or absent `path` finds nothing (the caller chooses its default)."""
    if os.path.dirname(cmd):
        return cmd if _executable(cmd) else None
    if not path:
        return None
    seen: set[str] = set()
    for d in path.split(os.pathsep):
        if d in seen:
            continue
        seen.add(d)
        name = os.path.join(d, cmd)
        if _executable(name):
            return name
    return None


def _executable(name: str) -> bool:
    # shutil's _access_check: exists, passes access(X_OK), and is not a directory.
    return os.path.exists(name) and os.access(name, os.F_OK | os.X_OK) and not os.path.isdir(name)


def private_dir(prefix: str) -> str:
    """A new directory, mode 0700, made by this call: tempfile.mkdtemp(prefix=prefix).

    mkdir(2) either makes the name or fails with EEXIST; it never follows a symlink
    planted at the name, so nobody else's directory (or link) is ever taken for ours.
    The name carries 48 random bits from os.urandom.  The directories tried are
    tempfile.gettempdir()'s ($TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp), the first
    one the directory can be made in."""
    candidates = [os.environ[k] for k in _TMP_ENV if os.environ.get(k)]
    candidates += _TMP_DIRS
    last: OSError | None = None
    for candidate in candidates:
        parent = os.path.abspath(candidate)
        for _ in range(_ATTEMPTS):
            name = os.path.join(parent, prefix + os.urandom(6).hex())
            try:
                os.mkdir(name, 0o700)
            except FileExistsError as exc:
                last = exc
                continue
            except OSError as exc:  # missing, not writable, read-only: the next candidate
                last = exc
                break
            return name
    raise last if last is not None else FileNotFoundError("no temporary directory")


def remove_tree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) for the launch path's own directories,
    which hold only files (a socket, resolv.conf, an owner stamp): each entry is unlinked
    through a descriptor of the directory, opened without following a symlink (a link
    at `path` is left alone, as rmtree leaves it).  A subdirectory, which none of them
    should hold, hands the whole removal to shutil.rmtree.  Errors are ignored."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # gone already, or not a directory
    nested = False
    try:
        for name in os.listdir(fd):
            try:
                os.unlink(name, dir_fd=fd)  # never follows: a link is removed, not its target
            except IsADirectoryError:
                nested = True
            except OSError:
                pass
    except OSError:
        pass
    finally:
        os.close(fd)
    if nested:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        os.rmdir(path)
    except OSError:
        pass
