"""Names made or moved at run time: rename, link, symlink, mkdir, mknod, truncate performed
by the supervisor on the real resulting name (csrc/supervise_fsop.c).  Real kernel,
`run_session`, on the full rung (mount namespace) and on a host made to look
namespace-less (where the open check runs too).  Every refusal is asserted on the file
system (nothing made) and has its allowed twin in the same directory; the attack tests
are run once with the supervision switched off to show they can fail."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import require_kernel, scaled
from launch.lg_helpers import world_policy

from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel

HOME_WRITE = '      - { path: "~/**", effect: allow }\n'
WRITE_DENY = '      - { path: "./protected.txt", effect: deny }\n'


@pytest.fixture(autouse=True)
def _kernel():
    h = probe_host()
    require_kernel(h.landlock_abi >= 1 and h.seccomp_notify, "Landlock + seccomp user notification")


def _host(rung: str, abi: int | None = None):
    h = probe_host()
    if abi is not None:  # an older Landlock ABI's ruleset on this kernel (it honours any)
        h = h.without(landlock_abi=abi)
    return h if rung == "ns" else h.without(mount_ns=False, pid_ns=False, user_ns=False)


def run(
    world,
    script: str,
    capfd,
    *,
    rung: str = "ns",
    events: list | None = None,
    abi: int | None = None,
    extra_read: str = "",
):
    from sandbox.policy import load_policy
    from sandbox.session import RunOptions, run_session

    pol = load_policy(
        world_policy(world, extra_read=extra_read, extra_write=HOME_WRITE + WRITE_DENY),
        cwd=world.workspace,
        home=world.home,
    )
    capfd.readouterr()
    options = RunOptions(
        argv=["sh", "-c", script],
        policy=pol,
        host=_host(rung, abi),
        env=dict(world.env),
        cwd=str(world.workspace),
        audit_dir=str(world.root / "audit"),
        on_event=None if events is None else events.append,
    )
    rc = run_session(options)
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.fixture
def fsop_off(monkeypatch):
    """The same launch with the name-changing syscalls not supervised (protection off)."""
    _disable_fsop(monkeypatch)


def _disable_fsop(monkeypatch) -> None:
    import sandbox.plan as plan_mod

    real = plan_mod.seccomp_plan  # build_plan's seam (memoized compile_seccomp)

    def no_fsop(**kw):
        kw["notify_fsop"] = False
        return real(**kw)

    monkeypatch.setattr(plan_mod, "seccomp_plan", no_fsop)


RUNGS = ["ns", "no-ns"]

# Made mid-run (none exists at launch, so no launch-time mask can cover it): each line
# prepares an allowed twin first, then tries the protected name.
ATTACKS = (
    "git init -q repo; printf 'ok\\n' > x.sample; mv x.sample repo/.git/hooks/x.sample; "
    "echo sample=$?; printf 'evil\\n' > prep; chmod +x prep; "
    "mv prep repo/.git/hooks/pre-commit; echo mv_hook=$?; "
    "printf 'evil\\n' > prep2; ln prep2 repo/.git/hooks/post-checkout; echo link_hook=$?; "
    "ln -s /tmp/evil-hook repo/.git/hooks/pre-push; echo symlink_hook=$?; "
    "mkfifo repo/.git/hooks/post-merge; echo mkfifo_hook=$?; "
    "printf 'export EVIL=1\\n' > rc; mv rc $HOME/.zshrc; echo mv_zshrc=$?; "
    "mkdir -p $HOME/.config/autostart; echo mkdir_autostart=$?; "
    "mkdir $HOME/.config/autostart/sub; echo mkdir_in_autostart=$?; "
    "printf '[Desktop Entry]\\n' > d; mv d $HOME/.config/autostart/evil.desktop; "
    "echo mv_desktop=$?; "
    "mkdir -p $HOME/.config/systemd/user; "
    "ln -s /tmp/evil.service $HOME/.config/systemd/user/evil.service; echo symlink_unit=$?; "
    "mkdir -p fake/hooks; printf 'evil\\n' > fake/hooks/pre-commit; "
    "mkdir sub; mv fake sub/.git; echo mv_dotgit=$?; "
    "rm -rf repo/.git/hooks; mkdir ph; printf 'evil\\n' > ph/pre-commit; "
    "mv ph repo/.git/hooks; echo mv_hooks_dir=$?; "
    # allowed twins: the same operations onto ordinary names
    "printf x > a; mv a b; echo mv_twin=$?; ln b c; echo link_twin=$?; "
    "ln -s b s; echo symlink_twin=$?; mkfifo f; echo mkfifo_twin=$?; "
    "mkdir -p d1/d2; echo mkdir_twin=$?; mv d1 d3; echo mvdir_twin=$?"
)
REFUSED = (
    "mv_hook",
    "link_hook",
    "symlink_hook",
    "mkfifo_hook",
    "mv_zshrc",
    "mkdir_in_autostart",
    "mv_desktop",
    "symlink_unit",
    "mv_dotgit",
    "mv_hooks_dir",
)
ALLOWED = (
    "mkdir_autostart",
    "mv_twin",
    "link_twin",
    "symlink_twin",
    "mkfifo_twin",
    "mkdir_twin",
    "mvdir_twin",
    "sample",
)
MADE = (
    "repo/.git/hooks/pre-commit",
    "repo/.git/hooks/post-checkout",
    "repo/.git/hooks/pre-push",
    "repo/.git/hooks/post-merge",
    "sub/.git",
    "~/.zshrc",
    "~/.config/autostart/sub",
    "~/.config/autostart/evil.desktop",
    "~/.config/systemd/user/evil.service",
)


def _codes(out: str) -> dict[str, int]:
    return {
        k: int(v)
        for k, v in (ln.split("=", 1) for ln in out.splitlines() if "=" in ln)
        if v.strip().isdigit()
    }


def _made(world, name: str) -> Path:
    return world.home / name[2:] if name.startswith("~/") else world.workspace / name


@pytest.mark.parametrize("rung", RUNGS)
def test_persistence_names_made_mid_run_are_refused(world, capfd, rung):
    events: list = []
    rc, out, err = run(world, ATTACKS, capfd, rung=rung, events=events)
    codes = _codes(out)
    assert rc == 0, err
    for k in REFUSED:
        assert codes.get(k, 0) != 0, (k, out, err)
    for k in ALLOWED:
        assert codes.get(k) == 0, (k, out, err)
    for name in MADE:
        assert not os.path.lexists(_made(world, name)), name
    assert (world.workspace / "c").read_text() == "x" and os.path.islink(world.workspace / "s")
    assert (world.workspace / "d3" / "d2").is_dir() and (world.home / ".config/autostart").is_dir()
    assert f'denied file_write "{world.workspace}/repo/.git/hooks/pre-commit"' in err
    assert f'denied file_write "{world.home}/.zshrc" (protected rule' in err
    denied = [e for e in events if e.result == "deny" and e.action == "file_write"]
    assert {e.errno for e in denied} == {1}  # EPERM, never EROFS/EBUSY
    assert any(e.target == f"{world.home}/.config/autostart/evil.desktop" for e in denied)
    assert all(e.rule for e in denied)


def test_the_attacks_succeed_without_the_supervision(world, capfd, fsop_off):
    """Protection off: the same script makes the persistence names (so the test above can fail)."""
    _rc, out, err = run(world, ATTACKS, capfd, rung="ns")
    codes = _codes(out)
    assert codes["mv_hook"] == 0 and codes["mv_zshrc"] == 0 and codes["mv_desktop"] == 0, err
    assert (world.workspace / "repo/.git/hooks/pre-commit").exists()
    assert (world.home / ".zshrc").read_text() == "export EVIL=1\n"


GIT = (
    "git init -q r && cd r && git config user.name tester && git config user.email t@e "
    "&& echo hello > f && git add f && git commit -qm first && git status --short "
    "&& echo init_ok; git config core.pager 'sh -c evil'; echo pager=$?; "
    "git config alias.x '!sh -c evil'; echo alias=$?; git config alias.st status; "
    "echo alias_ok=$?; git config core.hooksPath /tmp/h; echo hookspath=$?; cat .git/config"
)


@pytest.mark.parametrize("rung", RUNGS)
def test_git_config_judged_by_content(world, capfd, rung):
    events: list = []
    rc, out, err = run(world, GIT, capfd, rung=rung, events=events)
    codes = _codes(out.replace("\t", ""))
    assert "init_ok" in out, err
    assert codes["pager"] != 0 and codes["alias"] != 0 and codes["hookspath"] != 0
    assert codes["alias_ok"] == 0
    cfg = (world.workspace / "r/.git/config").read_text()
    assert "name = tester" in cfg and "st = status" in cfg
    assert "pager" not in cfg and "evil" not in cfg and "hooksPath" not in cfg
    assert not (world.workspace / "r/.git/config.lock").exists()
    assert 'core.pager="sh -c evil"' in err and "protected rule" in err
    denied = [e for e in events if e.result == "deny"]
    # exactly the three refused keys: git init, add, commit and status made no denial
    assert len(denied) == 3, [(e.target, e.detail) for e in denied]
    assert all(e.target == str(world.workspace / "r/.git/config") for e in denied)
    assert any("core.pager" in (e.detail or "") for e in denied)
    assert rc == 0


def test_git_config_pager_goes_in_without_the_supervision(world, capfd, fsop_off):
    _rc, out, _err = run(world, GIT, capfd, rung="ns")
    assert "pager = sh -c evil" in (world.workspace / "r/.git/config").read_text(), out


@pytest.mark.parametrize("rung", RUNGS)
def test_rm_rf_of_a_cloned_repository(world, capfd, rung):
    src = world.workspace / "origin"
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    subprocess.run(
        ["git", "-C", str(src), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
         "--allow-empty", "-m", "x"],
        check=True,
    )  # fmt: skip
    os.chmod(src, 0o755)
    events: list = []
    rc, out, err = run(
        world,
        f"git clone -q {src} clone && ls clone/.git/hooks | grep -c sample; rm -rf clone; "
        "echo rm=$?",
        capfd,
        rung=rung,
        events=events,
    )
    assert "rm=0" in out and out.split()[0].isdigit() and int(out.split()[0]) > 0, (out, err)
    assert not (world.workspace / "clone").exists()
    # Nothing in the workspace is denied.  Outside it, the Landlock ruleset's own refusals
    # of what git probes (/proc/filesystems on the no-namespace rung) are recorded denials.
    ws = str(world.workspace)
    assert not [e for e in events if e.result == "deny" and str(e.target).startswith(ws)]
    assert rc == 0


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


def test_plan_lists_the_name_changing_syscalls(world):
    from sandbox.plan import build_plan
    from sandbox.plan.seccomp_table import NOTIFY_FSOP
    from sandbox.policy import load_policy

    pol = load_policy(world_policy(world), cwd=world.workspace, home=world.home)
    for rung in RUNGS:
        plan = build_plan(pol, _host(rung), simulate=False)
        assert plan.seccomp.fsop_check
        notified = {a.syscall: a.why for a in plan.seccomp.actions if a.action == "notify"}
        for name in NOTIFY_FSOP:
            assert notified[name] == NOTIFY_FSOP[name]
    # simulation observes and performs nothing: not installed there
    assert not build_plan(pol, _host("ns"), simulate=True).seccomp.fsop_check


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
