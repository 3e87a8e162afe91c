"""Supervisor.join frees the C context only once nobody can read it (issue 19 review).

The context is freed off the session's return path, on a worker.  The event drainer reads
the context's ring until it ends; a join whose wait for the drainer timed out must leave
the context alone, or the still-running drainer would read freed memory."""

from __future__ import annotations

import threading

import pytest

from . import conftest
from .conftest import make_policy


def _blocked_launch(supervised, monkeypatch, gate: threading.Event, seen: threading.Event):
    def on_event(self, ev):  # the drainer's call: held until the test opens the gate
        seen.set()
        gate.wait(30)
        with self._lock:
            self.events.append(ev)

    monkeypatch.setattr(conftest.Launch, "_on_event", on_event)
    lau = supervised.start(["/bin/true"], make_policy([("/bin/true", "allow")]))
    lau.proc.communicate(timeout=conftest.scaled(30))
    assert seen.wait(conftest.scaled(30)), "no decision reached on_event"
    return lau


def test_join_with_the_drainer_still_running_keeps_the_context(supervised, monkeypatch):
    """Fails with the drainer's is_alive check in join removed: join would return and free
    the context under the drainer."""
    gate, seen = threading.Event(), threading.Event()
    lau = _blocked_launch(supervised, monkeypatch, gate, seen)
    with pytest.raises(TimeoutError, match="drainer"):
        lau.sup.join(timeout=0.3)
    assert not lau.sup._freed
    gate.set()
    lau.sup.join(timeout=conftest.scaled(30))  # the twin: once it ends, join frees
    assert lau.sup._freed
    assert [e.target for e in lau.events if e.action == "shell_exec"]


def test_join_after_the_drainer_ended_frees_the_context(supervised, monkeypatch):
    """The allowed twin: the drainer released before the join, one join frees."""
    gate, seen = threading.Event(), threading.Event()
    lau = _blocked_launch(supervised, monkeypatch, gate, seen)
    gate.set()
    lau.sup.join(timeout=conftest.scaled(30))
    assert lau.sup._freed
