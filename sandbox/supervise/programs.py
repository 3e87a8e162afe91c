"""The files of the programs a policy's shell_exec deny rules name, by identity.

Command rules judge names.  A hard link is another name for the same file: `ln
/usr/bin/curl ./cat` runs curl's bytes as `cat`, and its real path (what the
exec check judges after following symlinks) is `./cat`.  So the supervisor also
knows the device and inode of each program a deny rule names (its first word,
looked up in the program directories and $PATH, symlinks followed), with the
program's own path: an exec whose object has one of those identities is judged
again under that path too (csrc/supervise_exec_obj.c).  Deny only, like every
form judged from the object.  A byte copy is a new inode and is not caught here
(README: names are what command rules have).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable

from sandbox.policy.model import Policy

PROGRAM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
LIMIT = 4096  # identities kept; beyond that the rest are judged by name only
_GLOB = set("*?[")


def _dirs(path_env: str | None) -> list[str]:
    out: list[str] = []
    for d in (*PROGRAM_DIRS, *(path_env or "").split(":")):
        if d.startswith("/") and d not in out:
            out.append(d)
    return out


def _candidates(program: str, dirs: Iterable[str], listings: dict[str, list[str]]) -> list[str]:
    if "/" in program:
        if not program.startswith("/"):
            return []
        if not _GLOB & set(program):
            return [program]
        import glob as _glob  # only for a globbed program path (~1 ms to import)

        return _glob.glob(program)
    found = []
    for d in dirs:
        if _GLOB & set(program):
            if d not in listings:
                try:
                    listings[d] = sorted(os.listdir(d))
                except OSError:
                    listings[d] = []
            found += [os.path.join(d, n) for n in fnmatch.filter(listings[d], program)]
        else:
            found.append(os.path.join(d, program))
    return found


def denied_program_ids(policy: Policy, path_env: str | None) -> list[tuple[int, int, str]]:
    """(st_dev, st_ino, real path) of each existing regular file a deny rule's program
    names, symlinks followed (what the kernel would run), each identity once."""
    dirs = _dirs(path_env)
    listings: dict[str, list[str]] = {}
    seen: dict[tuple[int, int], str] = {}
    for rule in policy.block("shell_exec").rules:
        if rule.effect != "deny" or rule.command is None:
            continue
        for path in _candidates(rule.command.program, dirs, listings):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen[key] = os.path.realpath(path)
            if len(seen) >= LIMIT:
                break
    return [(dev, ino, path) for (dev, ino), path in seen.items()]
