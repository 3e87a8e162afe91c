"""The seccomp user-notification supervisor: exec and connect decisions in C (DESIGN §4).

    tables = compile_tables(policy, plan_info)
    sup = Supervisor(listener_fd, tables, root_pid=pid, simulate=False, on_event=cb)
    sup.start(); ...; sup.join()
"""
from __future__ import annotations

from .supervisor import Supervisor
from .tables import Tables, compile_tables

# The carve-out open check (supervisor opens and injects with ADDFD) is not
# implemented yet: the planner reads this and uses masks / reports the gap.
# In simulation, opens are judged by path and recorded (never blocked).
SUPPORTS_OPEN_CHECK = False

__all__ = ["SUPPORTS_OPEN_CHECK", "Supervisor", "Tables", "compile_tables"]
