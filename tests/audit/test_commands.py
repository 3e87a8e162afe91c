"""`landgate audit verify|show|stats|suggest|report` through the real command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from audit_helpers import Trail, event, fill, trail_fixture  # noqa: F401 - the `trail` fixture

from sandbox.audit.entries import REPORTED_FLAG
from sandbox.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_verify_exit_codes(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    fill(trail)
    rc, out, _ = run(capsys, "audit", "verify", str(trail.dir))
    assert rc == 0 and "audit trail intact" in out
    lines = trail.lines()
    del lines[5]
    trail.write_lines(lines)
    rc, out, err = run(capsys, "audit", "verify", str(trail.dir))
    assert rc == 1 and "seq 6: deleted" in err and out == ""
    rc, _, err = run(capsys, "audit", "verify", str(trail.dir / "nope"))
    assert rc == 2 and "no audit trail" in err


def test_verify_unsealed_is_exit_0_with_a_note(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(trail, end=False)
    rc, out, _ = run(capsys, "audit", "verify", str(trail.dir))
    assert rc == 0 and "unsealed session" in out


def test_verify_progress_callback(trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.audit import verify as v

    monkeypatch.setattr(v, "_PROGRESS_AFTER_S", 0.0)
    fill(trail, 50)
    calls: list[tuple[int, int]] = []
    r = v.verify_trail(
        trail.dir, key_directory=trail.keys, progress=lambda d, t: calls.append((d, t))
    )
    assert r.ok and calls and calls[-1][0] == calls[-1][1] > 0


def _mixed(trail: Trail) -> str:
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["first"]})
    w.append(event(0, action="network", target="evil.example:443", result="deny"))
    w.end_session(0)
    sid = w.start_session({"mode": "simulate", "argv": ["second"]})
    for i in range(6):
        w.append(event(i, result="deny" if i % 2 else "allow"))
    w.append(event(9, action="shell_exec", target="npm test", result="allow"))
    w.end_session(0)
    w.close()
    return sid


def test_show_filters(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    sid = _mixed(trail)
    d = str(trail.dir)
    rc, out, _ = run(capsys, "audit", "show", d)
    assert rc == 0 and "session start" in out and "evil.example:443" in out
    rc, out, _ = run(capsys, "audit", "show", "--denied", "--json", d)
    rows = [json.loads(x) for x in out.splitlines()]
    assert len(rows) == 4 and all(r["result"] == "deny" for r in rows)
    other = next(e["session"] for e in trail.entries() if e["type"] == "session_start")
    n = next(i for i in range(1, len(sid) + 1) if not other.startswith(sid[:i]))
    rc, out, _ = run(
        capsys, "audit", "show", "--session", sid[:n], "--action", "shell_exec", "--json", d
    )  # a unique prefix names the session
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["target"] for r in rows] == ["npm test"]
    rc, out, _ = run(
        capsys, "audit", "show", "--since", "1h", "--denied", "--session", sid, "--json", d
    )
    assert len(out.splitlines()) == 3
    rc, out, _ = run(capsys, "audit", "show", "--since", "2999-01-01T00:00", d)
    assert "no matching entries" in out
    rc, _, err = run(capsys, "audit", "show", "--since", "yesterday-ish", d)
    assert rc == 2 and "--since" in err
    rc, _, err = run(capsys, "audit", "show", "--session", "nope", d)
    assert rc == 2 and "no session" in err


def test_show_marks_what_was_reported_from_the_sandbox(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report-channel entry is the agent's claim: its row says so, landgate's own do not."""
    w = trail.writer()
    w.start_session({"mode": "enforce", "argv": ["agent"]})
    w.append(event(1, target="/ws/own.txt", result="deny"))
    claim = {"action": "file_read", "target": "/ws/claimed.txt", "result": "deny"}
    w.append(dict(claim, rule="policy.yaml:9", layer="tool-hook", flags=[REPORTED_FLAG]))
    w.append(dict(claim, target="/ws/norule.txt", layer="tool-hook", flags=[REPORTED_FLAG]))
    w.end_session(0)
    w.close()
    rc, out, _ = run(capsys, "audit", "show", "--denied", str(trail.dir))
    targets = ("/ws/own.txt", "/ws/claimed.txt", "/ws/norule.txt")
    rows = {t: line for line in out.splitlines()[1:] for t in targets if f" {t} " in line}
    assert rc == 0 and len(out.splitlines()) == 4 and set(rows) == set(targets)
    assert rows["/ws/claimed.txt"].endswith("[reported-from-sandbox] policy.yaml:9")
    assert rows["/ws/norule.txt"].endswith("[reported-from-sandbox] no rule named")
    assert REPORTED_FLAG not in rows["/ws/own.txt"]  # the twin: landgate's own decision
    assert rows["/ws/own.txt"].endswith("policy.yaml:7")
    rc, out, _ = run(capsys, "audit", "show", "--denied", "--json", str(trail.dir))
    flags = {r["target"]: r.get("flags") for r in map(json.loads, out.splitlines())}
    assert flags == {
        "/ws/own.txt": None,
        "/ws/claimed.txt": [REPORTED_FLAG],
        "/ws/norule.txt": [REPORTED_FLAG],
    }


def test_stats(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    sid = _mixed(trail)
    rc, out, _ = run(capsys, "audit", "stats", "--json", str(trail.dir))
    st = json.loads(out)
    assert st["sessions"] == 2 and st["decisions"] == 8
    assert st["by_result"] == {"allow": 4, "deny": 4}
    assert st["by_action"]["network"] == {"deny": 1}
    assert {"action": "network", "target": "evil.example:443", "count": 1} in st["top_denied"]
    rc, out, _ = run(capsys, "audit", "stats", "--session", sid, str(trail.dir))
    assert rc == 0 and "7 decisions in 1 session" in out and "top denied targets" in out


# ---------------------------------------------------------------------------------- suggest

RAN = [  # what the simulated run did, and what its policy said
    ("file_read", "src/app.ts", "allow", "rule 3, policy.yaml:9"),
    ("file_read", "README.md", "deny", "default deny of file_read (policy.yaml:4)"),
    ("file_read", "pkg/a[1]*.txt", "deny", "default"),
    ("file_write", "out/log.txt", "deny", "default deny of file_write (implied)"),
    ("shell_exec", "npm test", "allow", "rule 1, policy.yaml:15"),
    ("shell_exec", "git diff --stat", "deny", "default deny of shell_exec (policy.yaml:13)"),
    ("network", "api.openai.com:443", "deny", "default"),
]
DENIED_BY_RULE = ("file_read", ".env", "deny", "rule 1, policy.yaml:6")
NOT_RECORDED = [
    ("file_read", "src/other.ts"),
    ("file_read", "pkg/a1x.txt"),
    ("file_write", "src/app.ts"),
    # commands are generalised to their program (`git *`, `npm *`): other programs stay denied
    ("shell_exec", "curl https://evil.example"),
    ("shell_exec", "rm -rf /"),
    ("shell_exec", "gitx diff"),
    ("network", "evil.example:443"),
    ("network", "api.openai.com:80"),
]


def test_suggest_allows_the_simulated_run_and_nothing_more(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandbox.policy import decide, load_policy

    ws = tmp_path / "ws"
    ws.mkdir()

    def target(action: str, t: str) -> str:
        return str(ws / t) if action.startswith("file_") else t

    w = trail.writer()
    w.start_session({"mode": "enforce"})  # an enforce session after it must not be picked
    w.end_session(0)
    w2 = w
    w2.start_session({"mode": "simulate", "cwd": str(ws), "argv": ["agent"]})
    for i, (action, t, result, rule) in enumerate([*RAN, DENIED_BY_RULE]):
        w2.append(event(i, action=action, target=target(action, t), result=result, rule=rule))
    w2.end_session(0)
    w3 = trail.writer()
    w3.start_session({"mode": "enforce", "cwd": "/elsewhere"})
    w3.append(event(0, target="/elsewhere/x"))
    w3.end_session(0)
    w3.close()
    w.close()

    rc, out, err = run(capsys, "audit", "suggest", str(trail.dir))
    assert rc == 0, err
    assert "# note:" not in out, out  # the self-check found nothing still denied
    assert "review: denied by default" in out
    assert '# - { path: "./.env", effect: allow }' in out  # kept denied, for review
    path = tmp_path / "suggested.yaml"
    path.write_text(out)
    policy = load_policy(path, cwd=ws)
    for action, t, _, _ in RAN:
        d = decide(policy, action, target(action, t))
        assert d.effect == "allow", (action, t, d.rule_ref())
    assert decide(policy, "file_read", str(ws / ".env")).effect == "deny"
    for action, t in NOT_RECORDED:
        d = decide(policy, action, target(action, t))
        assert d.effect == "deny", (action, t, d.rule_ref())


def test_suggest_ignores_what_was_reported_from_the_sandbox(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attack: the agent sends a report claiming its secret reads were denied by default
    (and another claiming they were allowed), hoping `suggest` turns them into allow
    rules.  The twin: landgate's own default denial of the same kind is suggested."""
    ws = tmp_path / "ws"
    ws.mkdir()
    w = trail.writer()
    w.start_session({"mode": "simulate", "cwd": str(ws), "argv": ["agent"]})
    w.append(event(0, target=str(ws / "real.txt"), result="deny", rule="default deny"))
    for i, result in enumerate(("deny", "allow")):
        forged = event(i + 1, target=f"/root/.ssh/id_{result}", result=result, rule="")
        w.append(dict(forged, layer="tool-hook", flags=[REPORTED_FLAG]))
    w.end_session(0)
    w.close()
    rc, out, err = run(capsys, "audit", "suggest", str(trail.dir))
    assert rc == 0, err
    assert "real.txt" in out
    assert ".ssh" not in out, out


def test_suggest_without_a_simulation(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    fill(trail, 3)
    rc, _, err = run(capsys, "audit", "suggest", str(trail.dir))
    assert rc == 2 and "no simulation session" in err


# ----------------------------------------------------------------------------------- report


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        # `make install` installs it (DEB_PKGS); a missing browser must not hide the test.
        pytest.fail(
            "Debian's chromium is not installed (make install, or apt-get install chromium)"
        )
    return exe


def test_html_report_opens_in_headless_chromium(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nactions:\n  - action: file_read\n    defaultEffect: deny\n")
    import hashlib

    w = trail.writer()
    w.start_session(
        {
            "mode": "simulate",
            "policy": str(policy),
            "argv": ["sh", "-c", "cat .env"],
            "policy_sha256": hashlib.sha256(policy.read_bytes()).hexdigest(),
            "layers": [
                {
                    "name": "filesystem",
                    "state": "observed",
                    "mechanism": "seccomp-unotify",
                    "detail": "simulation",
                }
            ],
        }
    )
    for i in range(12):
        w.append(event(i, result="deny" if i < 5 else "allow"))
    for i in range(3):
        w.append(event(i, action="network", target="<script>x</script>:443", result="deny"))
    w.end_session(0)
    w.close()
    out = tmp_path / "report.html"
    rc, stdout, err = run(capsys, "audit", "report", "--html", str(out), str(trail.dir))
    assert rc == 0, err
    assert "7 allowed, 8 denied" in stdout
    page = out.read_text()
    assert "<script>x" not in page  # escaped, and no script of our own
    for forbidden in ("http://", "https://", "<link", "src="):
        assert forbidden not in page

    exe = _chromium()
    profile = tmp_path / "chromium-profile"
    flags = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
    env = dict(os.environ, HOME=str(tmp_path))
    dom = subprocess.run(
        [*flags, "--dump-dom", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert 'id="count-file_read-allow">7<' in text
    assert 'id="count-file_read-deny">5<' in text
    assert 'id="count-network-deny">3<' in text
    assert 'id="count-all-deny">8<' in text
    assert "audit trail intact" in text and "cat .env" in text and "defaultEffect" in text
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,1600", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
