"""sandbox.threads: reused worker threads for a session's helpers (issue 19)."""

from __future__ import annotations

import os
import threading

import pytest

from sandbox import threads


def _run_and_join(fn, name: str = "landgate-test") -> threads.Job:  # type: ignore[no-untyped-def]
    job = threads.run(fn, name)
    job.join(5)
    assert not job.is_alive()
    return job


def test_a_job_runs_on_a_real_named_thread_that_is_reused() -> None:
    seen: list[threading.Thread] = []
    _run_and_join(lambda: seen.append(threading.current_thread()), "landgate-one")
    _run_and_join(lambda: seen.append(threading.current_thread()), "landgate-two")
    first, second = seen
    # An ordinary threading.Thread (a user's on_event or logging see a real thread, never
    # a _DummyThread), named after the job while it runs.
    assert isinstance(first, threading.Thread)
    assert not isinstance(first, threading._DummyThread)  # type: ignore[attr-defined]
    assert first.daemon
    assert first is second  # the second job took the idle worker: no new thread
    assert first.name == threads.IDLE_NAME  # renamed back once idle


def test_names_while_running() -> None:
    names: list[str] = []
    _run_and_join(lambda: names.append(threading.current_thread().name), "landgate-named")
    assert names == ["landgate-named"]


def test_join_waits_for_the_job() -> None:
    gate = threading.Event()
    job = threads.run(gate.wait, "landgate-wait")
    job.join(0.05)
    assert job.is_alive()  # still waiting on the gate
    gate.set()
    job.join(5)
    assert not job.is_alive()


def test_concurrent_jobs_get_their_own_threads() -> None:
    # Eight at once (sandbox.run from eight threads): none waits for another's worker.
    gate = threading.Barrier(8, timeout=5)
    idents: list[int] = []
    lock = threading.Lock()

    def job() -> None:
        with lock:
            idents.append(threading.get_ident())
        gate.wait()

    jobs = [threads.run(job, f"landgate-{i}") for i in range(8)]
    for j in jobs:
        j.join(5)
        assert not j.is_alive()
    assert len(set(idents)) == 8


def test_idle_workers_are_bounded() -> None:
    gate = threading.Barrier(threads.MAX_IDLE + 4, timeout=5)
    jobs = [threads.run(gate.wait, "landgate-many") for _ in range(threads.MAX_IDLE + 4)]
    for j in jobs:
        j.join(5)
    assert len(threads._pool.workers) <= threads.MAX_IDLE


def test_a_failing_job_is_reported_and_its_worker_not_reused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hooked: list[tuple[type[BaseException] | None, str]] = []
    monkeypatch.setattr(
        threading, "excepthook", lambda args: hooked.append((args.exc_type, args.thread.name))
    )
    seen: list[threading.Thread] = []

    def boom() -> None:
        seen.append(threading.current_thread())
        raise ValueError("boom")

    _run_and_join(boom, "landgate-boom")
    assert hooked == [(ValueError, "landgate-boom")]
    seen[0].join(5)
    assert not seen[0].is_alive()  # ended, as a Thread whose target raised
    assert seen[0] not in threads._pool.workers


def test_a_retired_worker_is_not_reused() -> None:
    seen: list[threading.Thread] = []

    def job() -> None:
        seen.append(threading.current_thread())
        threads.retire_current()

    _run_and_join(job)
    seen[0].join(5)
    assert not seen[0].is_alive()
    assert seen[0] not in threads._pool.workers


def test_a_forked_child_starts_without_idle_workers() -> None:
    _run_and_join(lambda: None)
    assert threads._pool.workers  # one idle worker in this process
    pid = os.fork()
    if pid == 0:  # the child: the parent's workers do not exist here
        ok = not threads._pool.workers
        done: list[bool] = []
        job = threads.run(lambda: done.append(True), "landgate-child")
        job.join(5)
        os._exit(0 if ok and done == [True] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/ns/net"), reason="no /proc")
def test_netns_job_leaves_its_worker_in_landgate_namespace() -> None:
    from sandbox.net import netns

    own = os.stat("/proc/thread-self/ns/net").st_ino
    seen: list[int] = []
    # A job that moves into another namespace (here: a fresh one, when this process may
    # make one) and returns: its worker is back in landgate's namespace for the next job.
    try:
        fd, inner = netns.create_netns(lambda _fd: os.stat("/proc/thread-self/ns/net").st_ino)
    except netns.NetSetupError as exc:
        pytest.skip(f"cannot make a network namespace here: {exc}")
    os.close(fd)
    assert inner != own
    _run_and_join(lambda: seen.append(os.stat("/proc/thread-self/ns/net").st_ino))
    assert seen == [own]


def test_idle_count_counts_only_waiting_workers() -> None:
    _run_and_join(lambda: None)
    assert threads.idle_count() == len(threads._pool.workers) >= 1
    gate = threading.Event()
    before = threads.idle_count()
    job = threads.run(gate.wait, "landgate-busy")
    assert threads.idle_count() == before - 1  # the busy one is not idle
    gate.set()
    job.join(5)


def test_named_from_the_hand_over() -> None:
    # As a Thread is named from its start(): enumerate() shows the job's name at once,
    # before the worker has picked the job up.
    gate = threading.Event()
    _run_and_join(lambda: None)  # an idle worker to hand the next job to
    job = threads.run(gate.wait, "landgate-handed")
    try:
        assert "landgate-handed" in [t.name for t in threading.enumerate()]
    finally:
        gate.set()
        job.join(5)
    assert "landgate-handed" not in [t.name for t in threading.enumerate()]


def test_wait_idle_waits_for_running_jobs() -> None:
    gate = threading.Event()
    job = threads.run(gate.wait, "landgate-slow")
    assert not threads.wait_idle(0.05)  # one job still runs
    gate.set()
    assert threads.wait_idle(5)
    assert not job.is_alive()


def test_an_uncounted_service_is_not_waited_for_but_its_worker_is_busy() -> None:
    # An open audit writer's flusher lives until the writer's close(): wait_idle (the CLI's
    # exit, the tests' "every context freed") must not wait for it.  Its twin, a counted
    # job, is waited for; and the service's worker is not idle while it runs.
    gate = threading.Event()
    _run_and_join(lambda: None)
    idle = threads.idle_count()
    service = threads.run(gate.wait, "landgate-service", counted=False)
    try:
        assert threads.wait_idle(0.05)
        assert threads.idle_count() == idle - 1
        counted = threads.run(gate.wait, "landgate-counted")
        assert not threads.wait_idle(0.05)
    finally:
        gate.set()
    service.join(5)
    counted.join(5)
    assert threads.wait_idle(5)
    assert not service.is_alive() and not counted.is_alive()
