"""Issue 12: the caller's own /proc/PID entries under the open check (real kernel, both rungs).

Entries such as maps, environ or auxv need ptrace access to be opened.  The opener that
performs a supervised open is in a Landlock domain beside the agent's, never above it, so
Landlock's ptrace scoping refuses it where the caller itself would not be asked (the kernel
never checks a process against its own thread group).  The open check therefore hands the
caller its own entry (read-only, judged by the compiled decision, only where the sandbox's
ruleset grants reading that /proc/PID directory); every other process's entry stays refused.
"""

from __future__ import annotations

import pytest

from launch.lg_helpers import world_policy
from launch.test_access_time import _rung, file_denials, run  # noqa: F401  (_rung: autouse)

pytestmark = pytest.mark.kernel

# The shell is the launched process: the baseline's /proc/self/ grant names its own
# /proc/PID on the no-namespace rung too (its children do not get theirs there).
OWN = 'read -r m < /proc/self/maps && echo "maps=${m:+ok}"; '


def test_own_proc_entries_that_need_ptrace_access_open(world, capfd):
    _rc, out, err, events = run(world, OWN + "read -r a < /proc/self/smaps; echo smaps=$?", capfd)
    assert "maps=ok" in out and "smaps=0" in out, err
    assert "landgate: denied" not in err
    assert not [e for e in file_denials(events) if e.target.startswith("/proc/")]


def test_another_process_entry_is_not_handed_over(world, capfd):
    """Attack on the gate: a child asks for its parent's maps.  Not its own: the fallback
    does not apply and the opener's refusal stands (without the own-process check the
    entry would be handed over: its directory is readable under the ruleset)."""
    script = OWN + 'sh -c "cat /proc/$$/maps > /dev/null; echo parent=\\$?"'
    _rc, out, err, _events = run(world, script, capfd)
    assert "maps=ok" in out, err  # the twin: its own entry
    assert "parent=1" in out, (out, err)


def test_a_deny_rule_on_an_own_proc_entry_holds(world, capfd):
    policy = world_policy(world, extra_read='      - { path: "/proc/**/environ", effect: deny }')
    script = OWN + "read -r e < /proc/self/environ; echo environ=$?"
    _rc, out, err, events = run(world, script, capfd, policy=policy)
    assert "maps=ok" in out, err  # the twin: an entry no rule denies
    assert "environ=1" in out or "environ=2" in out, out
    assert "LANDGATE" not in out
    assert 'landgate: denied file_read "/proc/self/environ"' in err
    assert file_denials(events, "/proc/self/environ")
