"""Names made or moved at run time: rename, link, symlink, mkdir, mknod, truncate performed
by the supervisor on the real resulting name (csrc/supervise_fsop.c).  Real kernel,
`run_session`, on the full rung (mount namespace) and on a host made to look
namespace-less (where the open check runs too).  Every refusal is asserted on the file
system (nothing made) and has its allowed twin in the same directory; the attack tests
are run once with the supervision switched off to show they can fail.

This file: the protected names (persistence paths, git hooks and config, a cloned
repository's removal) and the plan.  test_fsop_forms.py: truncate, a renamed secret's
identity, the syscalls' other forms and the race; fsop_helpers.py: the shared harness."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from launch.lg_helpers import world_policy

from supervise.fsop_helpers import RUNGS, _disable_fsop, _host, _kernel, run  # noqa: F401

pytestmark = pytest.mark.kernel


@pytest.fixture
def fsop_off(monkeypatch):
    """The same launch with the name-changing syscalls not supervised (protection off)."""
    _disable_fsop(monkeypatch)


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
