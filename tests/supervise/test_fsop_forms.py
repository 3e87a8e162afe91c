"""Names made or moved at run time, the syscalls' forms and their objects (the design and
the protected names are test_fsop.py's): truncate of a denied file (also below Landlock
ABI 3, which has no TRUNCATE right), a secret's identity carried through a rename, each
syscall form (RENAME_EXCHANGE, a dirfd, an O_TMPFILE linked by AT_EMPTY_PATH or
/proc/self/fd, a symlink standing for `.git`, a read-denied directory renamed away) and a
directory swapped during the check.  Every refusal has its allowed twin; the attack tests
are run once with the supervision switched off to show they can fail."""

from __future__ import annotations

import os
import threading
import time

import pytest
from conftest import require_kernel, scaled

from sandbox.host.probe import probe_host
from supervise.fsop_helpers import RUNGS, _disable_fsop, _kernel, run  # noqa: F401

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("rung", RUNGS)
def test_truncate_of_a_denied_file(world, capfd, rung):
    (world.workspace / "protected.txt").write_text("keep me\n")
    (world.workspace / "notes.txt").write_text("drop me\n")
    py = (
        "import os,sys\n"
        "for p in sys.argv[1:]:\n"
        "    try: os.truncate(p, 0); print(p, 0)\n"
        "    except OSError as e: print(p, e.errno)\n"
    )
    _rc, out, err = run(world, f"python3 -c '{py}' protected.txt notes.txt", capfd, rung=rung)
    assert "protected.txt 13" in out and "notes.txt 0" in out, err
    assert (world.workspace / "protected.txt").read_text() == "keep me\n"
    assert (world.workspace / "notes.txt").read_text() == ""
    assert 'denied file_write "' in err and "protected.txt" in err


TRUNCATE_PY = (
    "import os,sys\n"
    "for p in sys.argv[1:]:\n"
    "    try: os.truncate(p, 0); print(os.path.basename(p), 0)\n"
    "    except OSError as e: print(os.path.basename(p), e.errno)\n"
)


@pytest.mark.parametrize("protection", ["on", "off"])
def test_truncate_below_landlock_abi_3(world, capfd, monkeypatch, protection):
    """Landlock ABI 2 (Debian 12's 6.1) has no TRUNCATE right: truncate(2) of a file the
    policy denies writing would empty it.  The supervisor judges it (file_write of the
    object) and performs it by reopening the file for writing under the sandbox's ruleset,
    whose WRITE_FILE right ABI 2 judges: a denied file and a file only readable stay whole,
    a writable one is emptied.  An ABI 2 ruleset on this kernel (the kernel enforces the
    rights a ruleset handles, nothing more).  With truncate neither supervised nor refused
    ("off") the denied file is emptied: the test can fail."""
    if protection == "off":
        import sandbox.plan as plan_mod

        real = plan_mod.seccomp_plan  # build_plan's seam (memoized compile_seccomp)

        def unguarded(**kw):
            kw["notify_fsop"] = False
            kw["refuse_truncate"] = False
            return real(**kw)

        monkeypatch.setattr(plan_mod, "seccomp_plan", unguarded)
    h = probe_host()
    require_kernel(h.landlock_abi >= 2, "Landlock ABI 2 (a ruleset of that ABI)")
    readonly = world.root / "readonly"
    readonly.mkdir()
    (readonly / "data.txt").write_text("read only\n")
    for p in (readonly, readonly / "data.txt"):
        p.chmod(0o777 if p.is_dir() else 0o666)
    (world.workspace / "protected.txt").write_text("keep me\n")
    (world.workspace / "notes.txt").write_text("drop me\n")
    read = f'      - {{ path: "{readonly}/**", effect: allow }}\n'
    args = f"protected.txt notes.txt {readonly}/data.txt"
    _rc, out, err = run(world, f"python3 -c '{TRUNCATE_PY}' {args}", capfd, abi=2, extra_read=read)
    if protection == "off":
        assert "protected.txt 0" in out, (out, err)
        assert (world.workspace / "protected.txt").read_text() == ""
        return
    assert "protected.txt 13" in out and "notes.txt 0" in out, (out, err)
    assert "data.txt 13" in out, (out, err)
    assert (world.workspace / "protected.txt").read_text() == "keep me\n"
    assert (readonly / "data.txt").read_text() == "read only\n"
    assert (world.workspace / "notes.txt").read_text() == ""
    assert 'denied file_write "' in err and "protected.txt" in err


@pytest.mark.parametrize("protection", ["on", "off"])
def test_renamed_secret_stays_denied(world, capfd, monkeypatch, protection):
    """A .env written from outside mid-run (never seen by the sandbox, not there at launch),
    renamed by the agent to an allowed name: the rename carries its identity.  With the
    renames not supervised ("off") the secret leaks: the test can fail."""
    if protection == "off":
        _disable_fsop(monkeypatch)
    later = world.workspace / "later"
    later.mkdir()
    os.chmod(later, 0o777)

    def outside():
        deadline = time.monotonic() + scaled(20)
        while not (later / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        (later / ".env").write_bytes(b"LATE=" + world.secret + b"\n")
        (later / "go").touch()

    t = threading.Thread(target=outside)
    t.start()
    script = (
        "touch later/ready; while [ ! -e later/go ]; do sleep 0.02; done; "
        "mv later/.env later/notes.txt; echo mv=$?; cat later/notes.txt; echo cat=$?; "
        "echo twin > later/twin.txt; mv later/twin.txt later/twin2.txt; cat later/twin2.txt"
    )
    try:
        _rc, out, err = run(world, script, capfd, rung="no-ns")
    finally:
        t.join()
    if protection == "off":
        assert world.secret.decode() in out
        return
    assert "mv=0" in out and "cat=1" in out, err
    assert world.secret.decode() not in out
    assert "twin" in out  # the allowed twin: renamed and read
    assert f'denied file_read "{later}/notes.txt"' in err


SYSCALLS_PY = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def rc(v):
    return 0 if v == 0 else ctypes.get_errno()
os.makedirs("repo/.git/hooks", exist_ok=True)
open("x", "w").write("evil\n")
open("y", "w").write("fine\n")
# renameat2(RENAME_EXCHANGE) with the user's own hook (there before launch)
print("xchg_hook", rc(libc.renameat2(-100, b"x", -100, b"repo/.git/hooks/pre-commit", 2)))
print("xchg_twin", rc(libc.renameat2(-100, b"x", -100, b"y", 2)))
# renameat relative to a directory fd
d = os.open("repo/.git", os.O_RDONLY | os.O_DIRECTORY)
print("dirfd_hook", rc(libc.renameat(-100, b"x", d, b"hooks/post-commit")))
print("dirfd_twin", rc(libc.renameat(-100, b"y", d, b"notes")))
# an O_TMPFILE file linked into place (linkat AT_EMPTY_PATH) and by /proc/self/fd
for name, how in (("hooks/pre-push", "empty"), ("hooks/pre-rebase", "proc"), ("tmpfile", "empty")):
    fd = os.open("repo/.git", os.O_TMPFILE | os.O_WRONLY, 0o755)
    os.write(fd, b"evil\n")
    if how == "empty":
        r = rc(libc.linkat(fd, b"", d, name.encode(), 0x1000))
    else:
        r = rc(libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), d, name.encode(), 0x400))
    print("tmpfile_" + name.replace("/", "_"), r)
# a symlink standing in for a repository's .git (hooks from a tree the agent controls)
home = os.path.expanduser("~")
os.makedirs("repo2", exist_ok=True)
print("symlink_ancestor", rc(libc.symlink(b"/tmp", b"repo2/.git")))
print("symlink_twin2", rc(libc.symlink(b"/tmp", b"repo2/tmp-link")))
# a read-denied directory renamed away would take its files out of the rule
print("mv_ssh", rc(libc.rename(f"{home}/.ssh".encode(), f"{home}/ssh-copy".encode())))
"""


@pytest.mark.parametrize("rung", RUNGS)
def test_syscall_forms(world, capfd, rung):
    (world.workspace / "prog.py").write_text(SYSCALLS_PY)
    (world.workspace / "repo/.git/hooks").mkdir(parents=True)
    (world.workspace / "repo/.git/hooks/pre-commit").write_text("users own\n")
    (world.workspace / "repo/.git/hooks/pre-commit.sample").write_text("sample\n")
    _rc, out, err = run(world, "python3 prog.py", capfd, rung=rung)
    got = dict(ln.split() for ln in out.splitlines() if len(ln.split()) == 2)
    expect_refused = ("xchg_hook", "dirfd_hook", "tmpfile_hooks_pre-push",
                      "tmpfile_hooks_pre-rebase", "symlink_ancestor", "mv_ssh")  # fmt: skip
    for k in expect_refused:
        assert got.get(k) == "1", (k, out, err)  # EPERM
    for k in ("xchg_twin", "dirfd_twin", "tmpfile_tmpfile", "symlink_twin2"):
        assert got.get(k) == "0", (k, out, err)
    hooks = world.workspace / "repo/.git/hooks"
    assert sorted(p.name for p in hooks.iterdir()) == ["pre-commit", "pre-commit.sample"]
    assert (hooks / "pre-commit").read_text() == "users own\n"
    assert (hooks / "pre-commit.sample").read_text() == "sample\n"
    assert (world.workspace / "repo/.git/tmpfile").read_text() == "evil\n"
    assert (world.workspace / "repo/.git/notes").read_text() == "evil\n"  # x and y swapped
    assert not os.path.lexists(world.workspace / "repo2/.git")
    assert world.ssh_key.exists() and not (world.home / "ssh-copy").exists()


RACE_PY = r"""
import os, threading
os.makedirs("repo/.git/hooks", exist_ok=True)
os.makedirs("safe", exist_ok=True)
stop = False
def flip():
    # `dir` alternates between a real directory's symlink and the hooks directory's
    while not stop:
        for target in ("safe", "repo/.git/hooks"):
            os.symlink(target, "dir.tmp")
            os.rename("dir.tmp", "dir")
t = threading.Thread(target=flip)
t.start()
made = refused = 0
for i in range(300):
    with open("prep", "w") as f:
        f.write("evil\n")
    try:
        os.rename("prep", "dir/pre-commit")
        made += 1
        if os.path.exists("safe/pre-commit"):
            os.unlink("safe/pre-commit")
    except OSError:
        refused += 1
stop = True
t.join()
print("made", made, "refused", refused)
"""


@pytest.mark.parametrize("rung", RUNGS)
def test_a_directory_swapped_during_the_check_changes_nothing(world, capfd, rung):
    """The parent is resolved once and the rename done on that very directory: swapping a
    symlink in the path between the check and the act cannot land a hook."""
    (world.workspace / "race.py").write_text(RACE_PY)
    _rc, out, err = run(world, "python3 race.py", capfd, rung=rung)
    assert "made" in out, err
    made = int(out.split()[1])
    refused = int(out.split()[3])
    assert made > 0 and refused > 0, out  # both sides of the race were hit
    assert not (world.workspace / "repo/.git/hooks/pre-commit").exists()
