"""Audit test helpers: the Trail handle, events, and what an attacker can do to lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.audit import AuditWriter
from sandbox.audit.canonical import GENESIS_PREV, seal


@dataclass
class Trail:
    dir: Path
    keys: Path

    def writer(self, **kw: Any) -> AuditWriter:
        return AuditWriter(self.dir, key_directory=self.keys, **kw)

    @property
    def segment(self) -> Path:
        return self.dir / "trail-000001.jsonl"

    def lines(self) -> list[bytes]:
        return self.segment.read_bytes().splitlines(keepends=True)

    def write_lines(self, lines: list[bytes]) -> None:
        self.segment.write_bytes(b"".join(lines))

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.lines()]

    def index_of(self, seq: int) -> int:
        return next(i for i, e in enumerate(self.entries()) if e["seq"] == seq)


def event(
    i: int,
    *,
    result: str = "allow",
    action: str = "file_read",
    target: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "pid": 100 + i,
        "action": action,
        "target": target or f"/ws/src/f{i}.ts",
        "result": result,
        "rule": "policy.yaml:7",
        "layer": "landlock",
        **extra,
    }


def fill(
    t: Trail, n: int = 30, *, checkpoint_every: int = 10, mode: str = "enforce", end: bool = True
) -> str:
    w = t.writer(checkpoint_every=checkpoint_every)
    sid = w.start_session({"mode": mode, "argv": ["agent"], "cwd": "/ws"})
    for i in range(n):
        w.append(event(i, result="deny" if i % 7 == 3 else "allow"))
    if end:
        w.end_session(0)
    w.close()
    return sid


def rechain(entries: list[dict[str, Any]], start: int = 0) -> list[bytes]:
    """What an attacker without the key can do: renumber and re-hash from `start` on."""
    out: list[bytes] = []
    last = GENESIS_PREV
    for i, original in enumerate(entries):
        e = dict(original)
        if i >= start:
            e.pop("hash", None)
            e["seq"] = i + 1
            e["prev"] = last
            line, last, _ = seal(e)
        else:
            line = (
                json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
                + b"\n"
            )
            last = e["hash"]
        out.append(line)
    return out


@pytest.fixture(name="trail")
def trail_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trail:
    """An isolated trail and key directory (never the real ~/.config or ~/.local/state).

    Test modules import it (`from audit_helpers import trail_fixture`): a conftest.py
    here would shadow tests/conftest.py, which tests import as `conftest`.
    """
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return Trail(tmp_path / "trail", tmp_path / "config" / "landgate")
