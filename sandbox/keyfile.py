"""Creating a secret key file once, race-free: the one routine behind landgate's keys.

The audit trail's HMAC key (sandbox.audit.paths) and the policy cache's HMAC key
(sandbox.policy.diskcache) are both made here.  Below every layer (standard library
only), so the policy package and the audit package can share it without importing
each other.
"""

from __future__ import annotations

import os
from pathlib import Path


def create_key_file(directory: Path, path: Path, nbytes: int) -> None:
    """Make `path` (in `directory`, created 0700) hold `nbytes` random bytes, mode 0600,
    unless it exists already: then it is left as it is (the caller reads whichever key
    won).  Raises OSError naming the step that failed.

    The key is written to a private temporary name, fsync'ed, then hard-linked into
    place: link() fails if another process made the key first, so two processes
    starting together never end up holding different keys, and nobody ever reads a
    half-written one."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # os.urandom, not secrets: secrets loads OpenSSL (3.7 MB resident per process, issue 19)
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(os.urandom(nbytes))  # the kernel CSPRNG, as secrets.token_bytes
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process's key is in place: it is the one everybody uses
    finally:
        os.unlink(tmp)
