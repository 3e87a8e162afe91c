"""Audit test helpers: the Trail handle, events, and what an attacker can do to lines."""

from __future__ import annotations

import json
import sys
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


# The attacker's own key: it can compute hashes and make tags, just not the trail's.
ATTACKER_KEY = b"\xa5" * 32


def forge(entry: dict[str, Any]) -> bytes:
    """One line as an attacker without the trail key can make it (a valid hash)."""
    e = dict(entry)
    e.pop("hash", None)
    return seal(e, ATTACKER_KEY)[0]


def digest(entry: dict[str, Any]) -> str:
    """An entry's SHA-256 digest (what the next entry's `prev` names)."""
    return str(entry["hash"])[:64]


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
            line, last, _ = seal(e, ATTACKER_KEY)
        else:
            line = (
                json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
                + b"\n"
            )
            last = digest(e)
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


@pytest.fixture(name="seal_path", params=["native", "python"])
def seal_path_fixture(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Writers the test makes seal and append natively (csrc/audit_seal.c, as in the
    supervisor's process) or with the extension unloaded (the pure-Python path)."""
    import sandbox._supervise  # noqa: F401 - loaded for "native", unloaded for "python"

    if request.param == "python":
        monkeypatch.delitem(sys.modules, "sandbox._supervise")
    return str(request.param)


def pinned_writer(tmp: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[Any, Path, Path]:
    """A writer whose trail two runs can compare byte for byte (everything random or
    clocked pinned), with a session started: (writer, audit directory, key directory).
    One key for every trail of the test (`name` picks a fresh key directory), no
    witness of an earlier one; checkpoints every 7 decisions."""
    import shutil
    import time

    import sandbox.audit.chain as chain_mod
    import sandbox.audit.writer as writer_mod
    from sandbox.audit.paths import prepare_trail_dirs

    monkeypatch.setattr(chain_mod, "token_hex", lambda n: "ab" * n)
    monkeypatch.setattr(writer_mod, "new_session_id", lambda: "20261205-000000-aaaaaa")
    monkeypatch.setattr(time, "time", lambda: 1_764_900_000.5)
    audit = tmp / "audit"
    template = tmp / "key-template"
    if not template.exists():
        prepare_trail_dirs(tmp / "scratch", template)
    keys = tmp / f"keys-{name}"
    shutil.rmtree(keys, ignore_errors=True)
    shutil.copytree(template, keys)
    writer = AuditWriter(audit, key_directory=keys, checkpoint_every=7)
    writer.start_session({"argv": ["t"], "mode": "enforce"})
    return writer, audit, keys
