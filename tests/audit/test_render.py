"""Agent-chosen text never reaches the operator's terminal raw (issue 14, attack 6).

Command lines, paths and DNS names are the agent's choice.  `audit show`, `audit
stats`, `audit verify`, the HTML report and the sandbox's stderr denial lines
(the C supervisor's and the DNS view's) render them escaped, one entry per line;
`--json` stays raw JSON (which escapes control characters itself).  The twin:
ordinary text, UTF-8 included, is shown as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from audit_helpers import Trail, event, trail_fixture  # noqa: F401 - the `trail` fixture
from conftest import require_kernel

from sandbox.audit.commands import report, show, stats
from sandbox.audit.escape import printable

REPO = Path(__file__).resolve().parents[2]
# An OSC title change, a screen clear, a CR that rewinds the row and a newline that
# starts a fake row of its own; a C1 CSI (U+009B) and a bidi override.
EVIL = "x\x1b]0;pwned\x07\x1b[2J\rlandgate: allow\nFAKE ROW\u009b31m\u202egnp.exe"
RAW_CONTROLS = ("\x1b", "\x07", "\r", "\u009b", "\u202e")


def _no_raw_controls(text: str) -> None:
    for c in RAW_CONTROLS:
        assert c not in text, (c, text)


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable(EVIL) == (
        "x\\x1b]0;pwned\\x07\\x1b[2J\\rlandgate: allow\\nFAKE ROW\\x9b31m\\u202egnp.exe"
    )
    assert printable("back\\slash") == "back\\\\slash"  # an escape cannot be faked
    # The twin: ordinary text (UTF-8 too) is untouched.
    assert printable("/ws/src/café.ts --flag=1") == "/ws/src/café.ts --flag=1"


def _evil_trail(t: Trail) -> None:
    w = t.writer()
    w.start_session({"mode": "enforce", "argv": ["sh", "-c", EVIL], "cwd": "/ws"})
    w.append(event(1, result="deny", action="shell_exec", target="cat " + EVIL))
    w.append(event(2, result="deny", action="file_read", target="/ws/" + EVIL))
    w.append(event(3, result="deny", action="network", target=EVIL + ".example.com"))
    w.append(event(4, result="allow", target="/ws/src/café.ts"))
    w.end_session(0)
    w.close()


def _args(t: Trail, **kw: object) -> SimpleNamespace:
    base: dict[str, object] = {"dir": str(t.dir), "key_dir": str(t.keys), "json": False}
    base.update(kw)
    return SimpleNamespace(**base)


def test_show_escapes_every_agent_string_one_entry_per_line(trail: Trail) -> None:
    _evil_trail(trail)
    out = show(_args(trail)).stdout
    _no_raw_controls(out)
    lines = out.splitlines()
    # header + session start + 4 decisions + session end
    assert len(lines) == 7, out
    assert "FAKE ROW" not in "".join(line.split("  ")[0] for line in lines)
    assert sum("\\x1b]0;pwned" in line for line in lines) >= 2  # argv and a target
    assert "/ws/src/café.ts" in out  # the twin
    denied = show(_args(trail, denied=True)).stdout
    _no_raw_controls(denied)
    assert len(denied.splitlines()) == 4


def test_show_json_stays_raw_json(trail: Trail) -> None:
    _evil_trail(trail)
    out = show(_args(trail, json=True)).stdout
    docs = [json.loads(line) for line in out.splitlines()]
    assert any(d.get("target") == "cat " + EVIL for d in docs)  # the exact recorded text
    assert "\x1b" not in out and "\r" not in out  # JSON escapes C0 itself


def test_stats_escapes_targets(trail: Trail) -> None:
    _evil_trail(trail)
    out = stats(_args(trail)).stdout
    _no_raw_controls(out)
    assert "\\x1b]0;pwned" in out
    assert "FAKE ROW" in out and "\nFAKE ROW" not in out


def test_report_escapes_html_and_controls(trail: Trail, tmp_path: Path) -> None:
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["<script>alert(1)</script>", EVIL]})
    w.append(event(1, result="deny", target="/ws/<img src=x onerror=alert(1)>" + EVIL))
    w.end_session(0)
    w.close()
    page_path = tmp_path / "r.html"
    report(_args(trail, html=str(page_path)))
    page = page_path.read_text()
    _no_raw_controls(page)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\\x1b]0;pwned" in page


def test_a_junk_line_is_shown_as_unreadable_not_a_traceback(trail: Trail) -> None:
    _evil_trail(trail)
    with open(trail.segment, "ab") as f:
        f.write(b"\x1b[2Jnot json \xff\n")
        f.write(b'{"type":"decision","seq":"x","session":7}\n')
    out = show(_args(trail)).stdout
    _no_raw_controls(out)
    assert "UNREADABLE" in out and "trail-000001.jsonl line" in out
    assert stats(_args(trail)).exit_code == 0


def test_the_supervisors_denial_line_escapes_the_target() -> None:
    from sandbox._supervise import ffi, lib  # type: ignore[attr-defined]

    def shown(raw: bytes, cap: int = 201) -> bytes:
        out = ffi.new("char[]", cap)
        lib.lg_escape_shown(out, cap, raw)
        return bytes(ffi.string(out))

    assert shown(EVIL.encode()) == (
        b"x\\x1b]0;pwned\\x07\\x1b[2J\\x0dlandgate: allow\\x0aFAKE ROW\\xc2\\x9b31m"
        + "\u202egnp.exe".encode()
    )
    assert shown(b'a"b\\c') == b'a\\"b\\\\c'
    assert shown(b"\xff\xfe\xc3") == b"\\xff\\xfe\\xc3"  # not UTF-8: escaped bytes
    assert shown(b"/ws/caf\xc3\xa9.ts") == b"/ws/caf\xc3\xa9.ts"  # the twin
    long = shown(b"\x1b" * 300)
    assert long.endswith(b"...") and len(long) <= 200 and b"\x1b" not in long


def test_the_dns_views_denial_line_escapes_the_name() -> None:
    from sandbox.audit.event import DecisionEvent
    from sandbox.session.recorder import Recorder

    def dns_denial(name: str) -> DecisionEvent:
        return DecisionEvent(
            source="dns", action="network", target=name, result="deny", layer="dns", ts=0.0
        )

    r, w = os.pipe()
    try:
        rec = Recorder(SimpleNamespace(append=lambda ev: 1), None, None, w)  # type: ignore[arg-type]
        rec.event(dns_denial(EVIL))
        rec.event(dns_denial("ok.test"))
        os.close(w)
        w = -1
        text = os.read(r, 65536).decode()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    _no_raw_controls(text)
    lines = text.splitlines()
    assert len(lines) == 2 and '"ok.test"' in lines[1]  # the twin
    assert lines[0].startswith('landgate: denied network "x\\x1b]0;pwned')


# ------------------------------------------------------------------- real kernel


@pytest.fixture(name="world_dir")
def world_dir_fixture() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="landgate-render-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


_AGENT = (
    "import subprocess, sys\n"
    "subprocess.run(['/bin/head', '-c', '5', 'ok.txt'])\n"
    "subprocess.run(['/bin/cat', sys.argv[1]])\n"
)


@pytest.mark.kernel
def test_real_session_escapes_argv_and_paths_everywhere(world_dir: Path) -> None:
    """The agent runs a denied command whose argv and path carry escapes: the
    supervisor's stderr line, `audit show` and `audit stats` all show them escaped."""
    ws = world_dir / "ws"
    ws.mkdir()
    evil_name = "f\x1b]0;pwned\x07\x1b[2J\rlandgate: allow\nFAKE"
    (ws / evil_name).write_text("secret\n")
    (ws / "ok.txt").write_text("twin\n")
    policy = world_dir / "policy.yaml"
    policy.write_text(
        "version: 1\n"
        f"workspace: {ws}\n"
        "actions:\n"
        "  - action: file_read\n    defaultEffect: deny\n    rules:\n"
        f'      - {{ path: "{ws}/", effect: allow }}\n'
        "  - action: shell_exec\n    defaultEffect: allow\n    rules:\n"
        '      - { command: "cat *", effect: deny }\n'
    )
    audit = world_dir / "audit"
    env = dict(os.environ, XDG_CONFIG_HOME=str(world_dir / "config"), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "sandbox"]
    proc = subprocess.run(
        [
            *cmd,
            "run",
            "--policy",
            str(policy),
            "--audit",
            str(audit),
            "--",
            "/usr/bin/python3",
            "-c",
            _AGENT,
            evil_name,
        ],
        capture_output=True,
        timeout=120,
        env=env,
        cwd=ws,
        check=False,
    )
    if proc.returncode == 125:
        require_kernel(False, f"landgate run refused to start: {proc.stderr!r}")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert b"secret" not in proc.stdout  # the denial itself
    assert proc.stdout == b"twin\n", (proc.stdout, stderr)  # the allowed twin
    # Only the exec denial: the file reads Landlock refuses the agent's Python (its
    # PYTHONPATH, outside the grant) are recorded and told too, on their own lines.
    denial = [line for line in stderr.splitlines() if line.startswith("landgate: denied shell")]
    assert len(denial) == 1, stderr
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x0dlandgate: allow\\x0aFAKE" in denial[0]
    _no_raw_controls(stderr)
    for sub in (["show"], ["show", "--denied"], ["stats"]):
        out = subprocess.run(
            [*cmd, "audit", *sub, str(audit)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=True,
        ).stdout
        _no_raw_controls(out)
        assert "\\x1b]0;pwned" in out, (sub, out)
    shown = subprocess.run(
        [*cmd, "audit", "show", str(audit)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    ).stdout
    assert not any(line.startswith("FAKE") for line in shown.splitlines()), shown


def test_show_names_a_bundled_preset_as_the_denial_line_does(trail: Trail) -> None:
    """`rule 1, coding-agent preset:27`, not the preset's path inside site-packages; the
    entry (and --json) keeps the full path.  Twin: a user's policy path is shown as is."""
    from sandbox.policy.loader import presets_dir

    preset = f"rule 1, {presets_dir()}/coding-agent.yaml:27"
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["cat", ".env"], "cwd": "/ws"})
    w.append(event(1, result="deny", target="/ws/.env", rule=preset))
    w.append(event(2, result="deny", target="/ws/.npmrc", rule="rule 2, /ws/.landgate.yaml:9"))
    w.end_session(0)
    w.close()
    out = show(_args(trail, denied=True)).stdout
    assert "rule 1, coding-agent preset:27" in out and str(presets_dir()) not in out, out
    assert "rule 2, /ws/.landgate.yaml:9" in out  # the twin
    docs = [json.loads(line) for line in show(_args(trail, json=True)).stdout.splitlines()]
    assert any(d.get("rule") == preset for d in docs)
