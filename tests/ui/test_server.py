"""The dashboard's HTTP checks, one by one, each with its allowed twin (no browser)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.host.dashboards import dashboard_ports
from sandbox.ui.server import Dashboard

POLICY = """version: 1
mode: simulate
actions:
  - action: shell_exec
    defaultEffect: deny
    rules:
      - { command: "sh*", effect: allow }
"""


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dashboard]:
    (tmp_path / "audit").mkdir()
    (tmp_path / ".landgate.yaml").write_text(POLICY)
    d = Dashboard(tmp_path / "audit", tmp_path / ".landgate.yaml", ui_dir=tmp_path / "ui")
    d.start()
    try:
        yield d
    finally:
        d.close()


def request(
    d: Dashboard,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    h = {"Host": f"127.0.0.1:{d.port}"}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def cookie(d: Dashboard) -> str:
    return f"landgate_ui={d.token}"


def test_token_in_the_url_becomes_a_cookie(dash: Dashboard) -> None:
    status, headers, _ = request(dash, "GET", f"/?token={dash.token}")
    assert status == 303 and headers["location"] == "/"
    assert headers["set-cookie"].startswith(f"landgate_ui={dash.token};")
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    status, headers, page = request(dash, "GET", "/", headers={"Cookie": cookie(dash)})
    assert status == 200 and dash.csrf.encode() in page
    assert "default-src 'none'" in headers["content-security-policy"]
    for remote in (b"http://", b"https://", b"//cdn"):
        assert remote not in page  # offline: nothing fetched from anywhere else


@pytest.mark.parametrize("path", ["/", "/api/sessions", "/api/events", "/app.js", "/api/policy"])
def test_missing_or_wrong_token_is_403(dash: Dashboard, path: str) -> None:
    assert request(dash, "GET", path)[0] == 403
    assert request(dash, "GET", path + "?token=" + "x" * 43)[0] == 403
    assert request(dash, "GET", path, headers={"Cookie": "landgate_ui=nope"})[0] == 403
    if path == "/api/events":  # the stream: its status and first event, then hang up
        conn = http.client.HTTPConnection("127.0.0.1", dash.port, timeout=10)
        conn.request("GET", path, headers={"Cookie": cookie(dash)})
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
        conn.close()
        return
    ok, _, _ = request(dash, "GET", path, headers={"Cookie": cookie(dash)})
    assert ok == 200


def test_a_foreign_host_header_is_refused_even_with_the_cookie(dash: Dashboard) -> None:
    # DNS rebinding: evil.example resolving to 127.0.0.1 would send Host: evil.example
    h = {"Cookie": cookie(dash), "Host": f"evil.example:{dash.port}"}
    assert request(dash, "GET", "/api/sessions", headers=h)[0] == 403
    h["Host"] = f"localhost:{dash.port}"
    assert request(dash, "GET", "/api/sessions", headers=h)[0] == 200


def _post_headers(d: Dashboard, **over: str) -> dict[str, str]:
    h = {
        "Cookie": cookie(d),
        "Origin": f"http://127.0.0.1:{d.port}",
        "X-Landgate-CSRF": d.csrf,
        "Content-Type": "application/json",
    }
    h.update(over)
    return {k: v for k, v in h.items() if v}


def _switch(d: Dashboard, **over: str) -> int:
    policy = d.ctx.policy_path
    body = json.dumps({"mode": "enforce"}).encode()
    st, _, data = request(d, "POST", "/api/mode/preview", headers=_post_headers(d), body=body)
    assert st == 200, data
    sha = json.loads(data)["base_sha256"]
    body = json.dumps({"mode": "enforce", "base_sha256": sha}).encode()
    before = policy.read_text()
    st, _, _ = request(d, "POST", "/api/mode/apply", headers=_post_headers(d, **over), body=body)
    if st != 200:
        assert policy.read_text() == before  # refused: not a byte written
    return st


@pytest.mark.parametrize(
    "over",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:1"},  # same site, another port: another origin
        {"Origin": "null"},
        {"Origin": ""},
        {"X-Landgate-CSRF": ""},
        {"X-Landgate-CSRF": "wrong"},
        {"Cookie": ""},
        {"Content-Type": "text/plain"},
    ],
)
def test_a_post_without_every_check_is_refused(dash: Dashboard, over: dict[str, str]) -> None:
    assert _switch(dash, **over) in (403, 415)
    assert "mode: simulate" in dash.ctx.policy_path.read_text()


def test_the_dashboards_own_post_changes_the_policy(dash: Dashboard) -> None:
    assert _switch(dash) == 200
    text = dash.ctx.policy_path.read_text()
    assert "mode: enforce" in text and "mode: simulate" not in text


def test_the_port_is_registered_while_it_runs(tmp_path: Path) -> None:
    (tmp_path / "audit").mkdir()
    d = Dashboard(tmp_path / "audit", tmp_path / "p.yaml", ui_dir=tmp_path / "ui")
    assert d.port not in dashboard_ports(tmp_path / "ui")
    d.start()
    assert dashboard_ports(tmp_path / "ui") == {d.port}
    d.close()
    assert dashboard_ports(tmp_path / "ui") == set()


def test_a_dead_dashboards_port_file_is_ignored(tmp_path: Path) -> None:
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "999999999.port").write_text("4242\n")  # no such pid
    (ui / "1.port").write_text("4343\n")  # init: alive
    (ui / "junk.port").write_text("1\n")
    assert dashboard_ports(ui) == {4343}
