"""The dashboard in a real browser (headless Debian Chromium over the DevTools protocol).

One walk through the product, as a user does it: `landgate init --yes`, `landgate ui`,
open the printed URL, watch a sandboxed command's decisions arrive live, filter,
open the session, "allow this" on its denial, confirm, check ./.landgate.yaml
changed exactly as shown and the rerun has no denial, review the simulation and
switch to enforce.  Screenshots of every page go to build/ui-screens/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.audit.reader import collect_sessions, iter_entries
from sandbox.policy.baseline import default_audit_dir

from .cdp import Browser
from .conftest import Ui, landgate, screens_dir

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

# A UDP datagram to TEST-NET-1: no rule of the preset allows it, so the network block's
# default denies it (a would-deny under `mode: simulate`); Debian's python3 reads nothing
# the preset does not allow, so this is the session's only denial.
DENIED = "192.0.2.1:9"
CLIENT = (
    '/usr/bin/python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)'
    ".sendto(b'x', ('192.0.2.1', 9))\" 2>/dev/null"
)


def _sessions() -> list:
    return list(collect_sessions(iter_entries(default_audit_dir())).values())


def _view(b: Browser, name: str) -> None:
    b.js(f"location.hash = '#{name}'")
    b.wait(f"document.getElementById('main').dataset.view === '{name.split('/')[0]}'")


def test_dashboard_walkthrough(ui: Ui, browser: Browser) -> None:
    b = browser
    shots = screens_dir()
    policy = ui.project / ".landgate.yaml"
    assert re.search(r"^mode: simulate$", policy.read_text(), re.MULTILINE)

    # the printed URL: the token becomes a cookie and leaves the address bar
    b.goto(ui.url)
    b.wait("document.getElementById('main') && document.getElementById('main').dataset.view")
    assert b.js("location.href") == ui.base + "/"
    load_ms = b.js(
        "(() => { const n = performance.getEntriesByType('navigation')[0];"
        " return n.loadEventEnd - n.startTime; })()"
    )
    assert load_ms is not None

    # a sandboxed command runs and waits for us: its decisions appear while it runs
    go = ui.project / "go"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "run",
            "--",
            "sh",
            "-c",
            f"{CLIENT}; while [ ! -e go ]; do sleep 0.05; done",
        ],
        cwd=ui.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        b.wait(
            "[...document.querySelectorAll('#live-body tr')]"
            f".some(r => r.textContent.includes('{DENIED}'))",
            timeout=60,
        )
        assert run.poll() is None  # still running: the row is live, not a replay
        # filter: result=deny keeps the would-deny and drops the allows
        b.js("{ const s = document.getElementById('f-result'); s.value = 'deny';"
             " s.dispatchEvent(new Event('change')); }")  # fmt: skip
        rows = b.js("[...document.querySelectorAll('#live-body tr')].map(r => r.textContent)")
        assert rows and all("deny" in r for r in rows), rows
        assert any(DENIED in r for r in rows)
        b.js("{ const q = document.getElementById('f-search'); q.value = 'no-such-target';"
             " q.dispatchEvent(new Event('input')); }")  # fmt: skip
        assert b.js("document.querySelectorAll('#live-body tr').length") == 0
        b.js("{ const q = document.getElementById('f-search'); q.value = '192.0.2';"
             " q.dispatchEvent(new Event('input')); }")  # fmt: skip
        assert b.js("document.querySelectorAll('#live-body tr').length") >= 1
        b.screenshot(shots / "live.png")
    finally:
        go.touch()
        _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    sid = _sessions()[-1].id

    # Sessions, then the session's own page
    _view(b, "sessions")
    b.wait(f"document.querySelector('tr.session-row[data-id=\"{sid}\"]')")
    b.screenshot(shots / "sessions.png")
    b.js(f"document.querySelector('tr.session-row[data-id=\"{sid}\"]').click()")
    b.wait(f"document.getElementById('session-id')?.textContent === '{sid}'")
    facts = b.js("document.getElementById('session-facts').textContent")
    assert "simulate" in facts and "sha256" in facts and "rung" in facts
    assert b.js("document.querySelectorAll('#layers tr').length") > 1
    b.screenshot(shots / "session.png")

    # Denials grouped; "allow this" shows the rule and the diff, writes only on confirm
    _view(b, "denials")
    b.wait("document.querySelector('#denial-groups .group')")
    b.screenshot(shots / "denials.png")
    before = policy.read_text()
    b.js(
        "[...document.querySelectorAll('tr.denial')].find(r => r.textContent.includes"
        f"('{DENIED}')).querySelector('button.allow-this').click()"
    )
    b.wait("!document.getElementById('modal').hidden")
    rule = b.js("document.getElementById('proposed-rule').textContent")
    diff = b.js("document.getElementById('diff').textContent")
    assert DENIED in rule and f"+{' ' * 6}- {rule}" in diff.replace("\n", "")
    b.screenshot(shots / "allow-this.png")
    assert policy.read_text() == before  # shown, not written
    b.js("document.getElementById('modal-confirm').click()")
    b.wait("document.getElementById('msg')?.textContent.startsWith('written')")
    after = policy.read_text()
    added = [ln for ln in after.splitlines() if ln not in before.splitlines()]
    assert added == [f"      - {rule}"], added  # exactly the line the dialog showed
    out = landgate("explain", "--policy", ".landgate.yaml", "network", DENIED, cwd=ui.project)
    assert out.startswith("allow"), out

    # the rerun: no denial at all
    landgate("run", "--", "sh", "-c", f"{CLIENT}; true", cwd=ui.project)
    last = _sessions()[-1]
    assert last.id != sid and last.deny == 0 and last.decisions > 0, last

    # Simulation review: the would-denies, then "switch to enforce"
    _view(b, "review")
    b.wait("document.getElementById('enforce')")
    b.screenshot(shots / "review.png")
    b.js("document.getElementById('enforce').click()")
    b.wait("!document.getElementById('modal').hidden")
    assert "+mode: enforce" in b.js("document.getElementById('diff').textContent")
    b.js("document.getElementById('modal-confirm').click()")
    b.wait("document.getElementById('policy-mode').textContent === 'enforce'")
    assert re.search(r"^mode: enforce$", policy.read_text(), re.MULTILINE)
    assert not re.search(r"^mode: simulate", policy.read_text(), re.MULTILINE)
    landgate("run", "--", "sh", "-c", f"{CLIENT}; true", cwd=ui.project)
    last = _sessions()[-1]
    assert last.mode == "enforce" and last.deny == 0, last

    # Trail and Policy (with the explain box)
    _view(b, "trail")
    assert b.js("document.getElementById('verify').className") == "ok"
    b.screenshot(shots / "trail.png")
    _view(b, "policy")
    b.js("document.getElementById('explain-action').value = 'shell_exec';"
         "document.getElementById('explain-target').value = 'curl https://example.org';"
         "document.getElementById('explain').click()")  # fmt: skip
    b.wait("document.getElementById('explain-out').textContent.startsWith('deny')")
    b.screenshot(shots / "policy.png")
    (shots / "timings.json").write_text(json.dumps({"page_load_ms": load_ms}))


def test_foreign_page_in_the_browser_cannot_change_the_policy(
    ui: Ui, browser: Browser, tmp_path: Path
) -> None:
    """A page from another origin (same site: 127.0.0.1, another port) posts to the
    dashboard with the user's cookie: refused, the policy file is unchanged."""
    import http.server
    import threading

    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(
        "<script>fetch('" + ui.base + "/api/mode/apply', {method: 'POST', mode: 'no-cors',"
        " credentials: 'include', body: JSON.stringify({mode: 'enforce'})})"
        ".then(() => { document.title = 'sent'; }, () => { document.title = 'sent'; });"
        "</script>"
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(evil), **k)

        def log_message(self, *a):  # type: ignore[no-untyped-def]
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        policy = ui.project / ".landgate.yaml"
        before = policy.read_text()
        browser.goto(ui.url)  # the user is logged in: the cookie is set
        browser.wait("document.getElementById('main')?.dataset.view === 'live'")
        browser.goto(f"http://127.0.0.1:{srv.server_address[1]}/index.html")
        browser.wait("document.title === 'sent'")
        assert policy.read_text() == before
        # (its allowed twin, the dashboard's own page making a change, is the walkthrough's
        # "switch to enforce"; test_server.py checks each refusal header by header)
    finally:
        srv.shutdown()
        srv.server_close()
