"""The seccomp user-notification supervisor: exec and connect decisions in C (DESIGN §4).

tables = compile_tables(policy, plan_info)
sup = Supervisor(listener_fd, tables, root_pid=pid, simulate=False, on_event=cb)
sup.start(); ...; sup.join()
"""

from __future__ import annotations

from .supervisor import Supervisor
from .tables import Tables, compile_tables

# The carve-out open check (csrc/supervise_open.c): the supervisor resolves and
# judges each open by device+inode and real path, reopens it on an opener thread
# restricted by the sandbox's own Landlock ruleset, and injects the fd with
# SECCOMP_IOCTL_NOTIF_ADDFD.  The planner installs it where no mount namespace
# masks the carve-outs.  In simulation, opens are judged by path and recorded.
SUPPORTS_OPEN_CHECK = True

__all__ = ["SUPPORTS_OPEN_CHECK", "Supervisor", "Tables", "compile_tables"]
