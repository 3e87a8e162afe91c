"""The seccomp user-notification supervisor: exec and connect decisions in C (DESIGN §4).

tables = compile_tables(policy, plan_info)
sup = Supervisor(listener_fd, tables, root_pid=pid, simulate=False, on_event=cb)
sup.start(); ...; sup.join()
"""

from __future__ import annotations

from .supervisor import Supervisor
from .tables import compile_tables
from .tabletypes import Tables

__all__ = ["Supervisor", "Tables", "compile_tables"]
