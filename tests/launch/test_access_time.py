"""Issue 12: files decided at access time, on the object, on every rung (real kernel).

Each test runs on this host's namespace rung and on the no-namespace rung.  A denial is
asserted on what leaked (the secret's bytes), on the agent's errno, on the one stderr line
and on the trail entry; each has its allowed twin.  No launch mask exists any more: the
files below are created, replaced or linked around the launch and are still judged.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import require_kernel, scaled

from launch.lg_helpers import world_policy
from sandbox.host.probe import probe_host

pytestmark = pytest.mark.kernel
RUNG = {"name": "ns"}


@pytest.fixture(autouse=True, params=["ns", "no-ns"])
def _rung(request):
    h = probe_host()
    require_kernel(h.landlock_abi >= 1 and h.seccomp_notify, "Landlock + seccomp user notification")
    if request.param == "ns":
        require_kernel(h.mount_ns and h.pid_ns, "mount + pid namespaces")
    RUNG["name"] = request.param
    yield


def _host():
    if RUNG["name"] == "ns":
        return probe_host()
    return probe_host().without(mount_ns=False, pid_ns=False, user_ns=False)


def run(world, script: str, capfd, *, policy: Path | None = None, events=None):
    from sandbox.policy import load_policy
    from sandbox.session import RunOptions, run_session

    pol = load_policy(policy or world_policy(world), cwd=world.workspace, home=world.home)
    got: list = [] if events is None else events
    capfd.readouterr()
    rc = run_session(
        RunOptions(
            argv=["sh", "-c", script],
            policy=pol,
            host=_host(),
            env=dict(world.env),
            cwd=str(world.workspace),
            audit_dir=str(world.root / "audit"),
            on_event=got.append,
        )
    )
    out, err = capfd.readouterr()
    return rc, out, err, got


def file_denials(events, target: str | None = None):
    return [
        e
        for e in events
        if e.result == "deny"
        and e.action in ("file_read", "file_write")
        and (target is None or e.target == target)
    ]


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + scaled(20)
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def _outside(world, action) -> threading.Thread:
    """Run `action` from outside the sandbox once the agent says it started (./started),
    then let the agent go on (./go)."""

    def body() -> None:
        _wait_for(world.workspace / "started")
        action()
        (world.workspace / "go").write_text("")

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


WAIT = "touch started; while [ ! -e go ]; do sleep 0.01; done; "


def test_cat_dotenv_is_one_denial_line_and_one_trail_entry(world, capfd):
    rc, out, err, events = run(
        world, "cat .env; echo rc=$?; cat .env 2>/dev/null; cat src/app.ts", capfd
    )
    assert world.secret.decode() not in out + err
    assert "rc=1" in out and "Permission denied" in err
    assert "answer = 42" in out  # the twin: a granted file beside it
    lines = [x for x in err.splitlines() if x.startswith("landgate: denied file_read")]
    want = f'landgate: denied file_read "{world.dotenv}" (rule 1, {world.root}/policy.yaml:7)'
    assert lines == [want]
    denied = file_denials(events, str(world.dotenv))
    assert len(denied) == 2 and {e.errno for e in denied} == {13}  # one per attempt
    assert denied[0].layer == "carve-outs" and denied[0].rule.startswith("rule 1,")
    assert rc == 0


def test_write_to_dotenv_is_refused_and_the_file_unchanged(world, capfd):
    before = world.dotenv.read_bytes()
    policy = world_policy(world, extra_write='      - { path: "**/.env", effect: deny }\n')
    _rc, out, err, events = run(
        world, "echo X > .env; echo rc=$?; echo X > notes.txt; cat notes.txt", capfd, policy=policy
    )
    assert "rc=2" in out or "rc=1" in out
    assert world.dotenv.read_bytes() == before  # never emptied, never discarded silently
    assert "X" in out and (world.workspace / "notes.txt").read_text() == "X\n"  # the twin
    assert f'landgate: denied file_write "{world.dotenv}"' in err
    assert file_denials(events, str(world.dotenv))[0].action == "file_write"


def test_dotenv_created_from_outside_while_the_agent_sleeps(world, capfd):
    later = world.workspace / "later"
    later.mkdir()

    def create() -> None:
        (later / ".env").write_bytes(b"LATE=" + world.secret + b"\n")
        (later / "plain.txt").write_text("plain twin\n")

    t = _outside(world, create)
    _rc, out, err, events = run(
        world, WAIT + "cat later/.env; echo rc=$?; cat later/plain.txt", capfd
    )
    t.join()
    assert world.secret.decode() not in out + err
    assert "rc=1" in out and "plain twin" in out
    assert file_denials(events, str(later / ".env"))


def test_atomic_rename_replace_from_outside_is_still_denied(world, capfd):
    new_secret = b"REPLACED-" + world.secret

    def replace() -> None:
        tmp = world.workspace / ".env.tmp~"
        tmp.write_bytes(new_secret + b"\n")
        os.replace(tmp, world.dotenv)  # an editor's save: a new inode under the denied name
        twin = world.workspace / "notes.tmp~"
        twin.write_text("replaced twin\n")
        os.replace(twin, world.workspace / "notes.txt")

    t = _outside(world, replace)
    _rc, out, err, events = run(
        world, "cat .env >/dev/null 2>&1; " + WAIT + "cat .env; echo rc=$?; cat notes.txt", capfd
    )
    t.join()
    assert new_secret.decode() not in out + err and world.secret.decode() not in out
    assert "rc=1" in out and "replaced twin" in out
    assert len(file_denials(events, str(world.dotenv))) == 2


def test_hard_link_to_a_key_made_before_launch_is_denied(world, capfd):
    """~/.ssh/ is denied; a hard link to ~/.ssh/id_rsa under the granted workspace, made before
    launch, is the same inode: denied by device + inode, whatever its name."""
    link = world.workspace / "innocent.txt"
    os.link(world.ssh_key, link)
    os.link(world.app_source, world.workspace / "app-link.ts")  # the twin
    _rc, out, err, events = run(world, "cat innocent.txt; echo rc=$?; cat app-link.ts", capfd)
    assert world.secret.decode() not in out + err
    assert "rc=1" in out and "answer = 42" in out
    denied = file_denials(events, str(link))
    assert denied and denied[0].rule.startswith("rule 2,")  # ~/.ssh/'s rule, by identity


def test_default_allow_policy_denies_dotenv_outside_the_workspace(world, capfd):
    outside = world.root / "elsewhere"
    outside.mkdir()
    (outside / ".env").write_bytes(b"OUT=" + world.secret + b"\n")
    (outside / "ok.txt").write_text("outside twin\n")
    policy = world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: allow
    rules:
      - {{ path: "**/.env", effect: deny }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: allow
""",
        "allow.yaml",
    )
    _rc, out, err, events = run(
        world, f"cat {outside}/.env; echo rc=$?; cat {outside}/ok.txt", capfd, policy=policy
    )
    assert world.secret.decode() not in out + err
    assert "rc=1" in out and "outside twin" in out
    assert file_denials(events, str(outside / ".env"))


def test_landlock_refusal_of_a_supervised_open_is_recorded(world, capfd):
    """A read outside every grant: Landlock refuses the opener's open; the trail and stderr say
    so under the default rule.  The twin: the same file's neighbour inside the grant."""
    outside = world.root / "not-granted.txt"
    outside.write_text("not granted\n")
    _rc, out, err, events = run(world, f"cat {outside}; echo rc=$?; cat README.md", capfd)
    assert "not granted" not in out and "rc=1" in out and "demo workspace" in out
    denied = file_denials(events, str(outside))
    assert denied and denied[0].rule.startswith("default deny of file_read")
    assert f'landgate: denied file_read "{outside}" (default deny' in err


def test_file_access_all_records_allowed_opens(world, capfd):
    policy = world_policy(world, extra="audit: { file_access: all }\n")
    _rc, out, _err, events = run(world, "cat src/app.ts README.md", capfd, policy=policy)
    assert "answer = 42" in out
    allowed = {e.target for e in events if e.action == "file_read" and e.result == "allow"}
    assert {str(world.app_source), str(world.workspace / "README.md")} <= allowed
    # the twin: the default records denials only
    _rc, _out, _err, events = run(world, "cat src/app.ts README.md", capfd)
    assert not [e for e in events if e.action == "file_read" and e.result == "allow"]


def test_stat_ls_and_rm_of_a_denied_file_work(world, capfd):
    _rc, out, err, events = run(
        world, "ls -l .env >/dev/null && echo ls=ok; stat -c %s .env; rm .env && echo rm=ok", capfd
    )
    assert "ls=ok" in out and "rm=ok" in out
    assert not world.dotenv.exists()
    assert not file_denials(events, str(world.dotenv)), err


def test_large_workspace_deep_dotenv(world, capfd):
    """A workspace far beyond any launch walk (20k directories here; the bench has 300k): the
    deep .env is denied, and nothing at launch looked at the tree."""
    deep = world.workspace / "node_modules"
    for i in range(200):
        for k in range(100):
            (deep / f"p{i}" / f"m{k}").mkdir(parents=True)
    target = deep / "p199" / "m99" / ".env"
    target.write_bytes(b"DEEP=" + world.secret + b"\n")
    _rc, out, err, events = run(
        world, "cat node_modules/p199/m99/.env; echo rc=$?; ls node_modules | wc -l", capfd
    )
    assert world.secret.decode() not in out + err
    assert "rc=1" in out and "200" in out
    assert file_denials(events, str(target))


def test_git_init_add_commit_status_and_rm_rf_without_denials(world, capfd):
    """git under the open check: its config.lock renamed over .git/config (a protected path it
    reads) must not make the next lock file look denied when its inode number is reused.
    The default protected paths hold (.git/hooks/ but *.sample, .git/config by content): git
    init writes the samples, `git config user.name` passes the content judge."""
    policy = world_policy(world)
    script = (
        "mkdir repo && cd repo && git init -q . && git config user.name x && "
        "git config user.email x@example.com && echo a > a && git add -A && "
        "git commit -qm m && git status --short && echo git=ok; cd .. && rm -rf repo && echo rm=ok"
    )
    _rc, out, err, events = run(world, script, capfd, policy=policy)
    assert "git=ok" in out and "rm=ok" in out, err
    # Landlock's refusals outside the grant (/proc/mounts on the no-ns rung) are recorded
    # too; none inside the workspace.
    assert not [e for e in file_denials(events) if e.target.startswith(str(world.workspace))], err
