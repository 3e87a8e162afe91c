"""What this machine offers: kernel features, the network rung, the supervisor install.

Probed once per process, below the planner (policy → host → plan): `plan`,
`doctor` and the session read these objects, never the kernel directly.
"""

from __future__ import annotations

from sandbox.host.probe import HostCapabilities, probe_host
from sandbox.host.supervisor import SupervisorStatus, supervisor_status

__all__ = ["HostCapabilities", "SupervisorStatus", "probe_host", "supervisor_status"]
