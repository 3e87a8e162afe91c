"""The one thread a session's hook decisions run on (sandbox.session.report).

Decisions share the policy's lazily built caches, and the C exec judge's buffers are per
thread (making them costs ~15 ms), so every decision runs in order on one thread.  Apart
from the channel because it is a small general tool (a one-worker executor) that the
channel's sockets and threads do not need to be read with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue
    from typing import Any


class DecidingThread:
    """One thread running jobs in order: `call` waits for its job's result (its exception
    raised in the caller), `post` does not wait (a failure there is the next call's to
    meet: the warm-up's).  What concurrent.futures' one-worker pool did, in a thread
    and a SimpleQueue (C)."""

    def __init__(self) -> None:
        import queue  # here: ~0.5 ms that a session without a hook does not pay

        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="landgate-decide", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        job = Job(fn, args)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        self._jobs.put(Job(fn, args))

    def stop(self) -> None:
        """Finish the jobs queued, then end the thread."""
        self._jobs.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.result = job.fn(*job.args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, as a Future does
                job.error = exc
            finally:
                job.done.set()


class Job:
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
