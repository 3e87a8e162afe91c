"""Tables compiled before the child is ready, bound to it after (issue 19).

`compile_tables(policy, {"bind_later": True, ...})` leaves out what only the ready child
can say: its Landlock ruleset (the opener threads restrict themselves with it), the trees
it can write (execs elsewhere skip verification) and its network namespace.  Such tables
must not start a supervisor until `Tables.bind` has set them: the zeroed struct would
otherwise hand the opener fd 0 as "the sandbox's ruleset" and the no-Landlock defaults.
"""

from __future__ import annotations

import os

import pytest

from sandbox.errors import LaunchError
from sandbox.supervise import Supervisor, compile_tables
from supervise.conftest import make_policy


def _later(**info):
    return compile_tables(make_policy(), {"resolve_hosts": False, "bind_later": True, **info})


def test_unbound_tables_start_no_supervisor():
    """Fails with Supervisor.start's check removed: the loop would start on tables whose
    ruleset, writable trees and namespace were never set."""
    tables = _later()
    assert not tables.bound
    sup = Supervisor(-1, tables, root_pid=os.getpid())
    with pytest.raises(LaunchError, match="not bound"):
        sup.start()


def test_bound_tables_start_a_supervisor():
    """The twin: the same tables, bound, start (and stop) a supervisor."""
    tables = _later()
    tables.bind(ruleset_fd=None, write_trees=None, private_netns=None)
    sup = Supervisor(-1, tables, root_pid=os.getpid())
    sup.start()
    sup.stop()
    sup.join(timeout=10)


def test_bind_sets_the_childs_facts_in_the_c_tables(tmp_path):
    tables = _later()
    c = tables.c
    assert c.open_ruleset_fd == -1  # not fd 0 of the zeroed struct, even before bind
    assert c.write_known == 0
    tables.bind(ruleset_fd=7, write_trees=[str(tmp_path)], private_netns=(5, 4026531840))
    assert c.open_ruleset_fd == 7
    assert c.write_known == 1 and c.n_write_trees == 1
    assert c.private_netns == 1
    assert (c.private_netns_dev, c.private_netns_ino) == (5, 4026531840)
    with pytest.raises(LaunchError, match="bound twice"):
        tables.bind(ruleset_fd=None, write_trees=None, private_netns=None)


@pytest.mark.parametrize("check", ["open_check", "fsop_check"])
def test_a_check_without_the_sandboxs_ruleset_is_refused_at_bind(check):
    """The supervisor opens (renames, creates) for the sandbox: under Landlock it must do
    so under the sandbox's ruleset, so binding without one is refused."""
    tables = _later(**{check: True})
    with pytest.raises(LaunchError, match="must pass landlock_ruleset_fd"):
        tables.bind(ruleset_fd=None, write_trees=None, private_netns=None)
    assert not tables.bound


@pytest.mark.parametrize("check", ["open_check", "fsop_check"])
def test_the_no_landlock_rung_binds_without_a_ruleset(check):
    """The twin: where Landlock is absent (--best-effort) there is no ruleset to pass."""
    tables = _later(**{check: True, "landlock": "absent"})
    tables.bind(ruleset_fd=None, write_trees=None, private_netns=None)
    assert tables.bound and tables.c.open_ruleset_fd == -1


def test_compile_tables_without_bind_later_binds_at_once():
    """The one-step form (tests, explain's tools) still checks and binds in compile_tables."""
    pol = make_policy()
    with pytest.raises(LaunchError, match="must pass landlock_ruleset_fd"):
        compile_tables(pol, {"resolve_hosts": False, "open_check": True})
    tables = compile_tables(pol, {"resolve_hosts": False, "private_netns": (1, 2)})
    assert tables.bound and tables.c.private_netns == 1
