"""The composition root: policy → plan → launch → supervise / net → audit (DESIGN §2).

`run_session(RunOptions)` is the whole `landgate run`; `sandbox.run` (the API)
and the CLI both call it.  Nothing below this package imports it.
"""

from __future__ import annotations

from sandbox.session.run import RunOptions, SessionResult, run_session, run_session_result

__all__ = ["RunOptions", "SessionResult", "run_session", "run_session_result"]
