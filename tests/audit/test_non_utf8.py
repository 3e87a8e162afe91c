"""Bytes that are not UTF-8 in what the trail records (an argv word, a file name) are
recorded, not fatal.

Python hands such bytes over as lone surrogates (surrogateescape); UTF-8 cannot carry
them, and the writer used to raise: `landgate run -- echo $'a\\xffb'` ended in a traceback
before the agent ran, and an agent's own exec of such a word stopped the supervisor.  The
trail now spells each as JSON's `\\udcXX` escape: the line is UTF-8, it verifies, and
reading it back gives the very bytes.  The twin: valid text is written byte for byte as
before (no escape added to it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from conftest import require_root
from helpers import cli

from sandbox.audit.canonical import canonical
from tests.launch.lg_helpers import audit_show_json, run_landgate

WORD = b"a\xffb\xc3"  # an invalid byte, and a UTF-8 sequence cut short


def test_canonical_spells_undecodable_bytes_as_escapes_and_reads_them_back() -> None:
    text = os.fsdecode(WORD)
    line = canonical({"argv": [text], "name": "é"})
    line.decode("utf-8")  # a UTF-8 line, or this raises
    assert b"\\udcff" in line and b"\\udcc3" in line
    assert os.fsencode(json.loads(line)["argv"][0]) == WORD
    # The twin: valid text keeps its own bytes.
    assert canonical({"name": "é"}) == '{"name":"é"}'.encode()


def test_landgate_run_records_a_command_line_that_is_not_utf8(tmp_path: Path) -> None:
    require_root()
    xdg = tmp_path / "xdg"
    script = "import os, sys; sys.stdout.buffer.write(b'|'.join(map(os.fsencode, sys.argv[1:])))"
    inner = [sys.executable, "-c", script, os.fsdecode(WORD)]
    # The agent's own exec of such a word goes through the supervisor's exec check.
    argv = ["/bin/sh", "-c", 'exec "$@"', "sh", *inner]
    p = run_landgate(argv, policy="coding-agent", xdg=xdg, cwd=tmp_path)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout == WORD
    assert b"Traceback" not in p.stderr
    entries = audit_show_json(xdg)
    execs = [e for e in entries if e.get("argv") and e["argv"][-1] == os.fsdecode(WORD)]
    assert execs, [e.get("argv") for e in entries]
    start = next(e for e in entries if e.get("type") == "session_start")
    assert os.fsdecode(WORD) in json.dumps(start, ensure_ascii=False)
    env = dict(os.environ, XDG_STATE_HOME=str(xdg / "state"), XDG_CONFIG_HOME=str(xdg / "config"))
    v = cli.landgate("audit", "verify", env=env, text=False)
    assert v.returncode == 0, v.stdout + v.stderr
    html = tmp_path / "report.html"
    r = cli.landgate("audit", "report", "--html", str(html), env=env, text=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a\\udcffb" in html.read_text(encoding="utf-8")
