"""The dashboard's HTTP server: 127.0.0.1 only, a random token, and checks before any route.

Who may talk to it: the browser of the user who started it.  So:
  * it binds 127.0.0.1 on a free port, and its port is denied to every sandbox
    (sandbox.host.dashboards: an infrastructure deny ahead of the policy's rules);
  * every request needs the token: in the printed URL once (`/?token=...`, then
    an HttpOnly, SameSite=Strict cookie and a redirect that drops it from the
    address bar), else 403;
  * the Host header must name this server (127.0.0.1:PORT or localhost:PORT):
    a DNS-rebinding page cannot borrow the cookie;
  * every POST needs an Origin of this server and the X-Landgate-CSRF header
    (a second random value, given to the page only), and a JSON body;
  * responses carry a Content-Security-Policy allowing only this origin.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.errors import LandgateError
from sandbox.ui import api, sse

COOKIE = "landgate_ui"
MAX_BODY = 64 * 1024
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _static(name: str) -> bytes:
    return resources.files("sandbox.ui").joinpath("static", name).read_bytes()


class Dashboard:
    """One dashboard: the server, its token, its port file.  `start()` then `url`."""

    def __init__(
        self,
        audit_dir: Path,
        policy_path: Path,
        *,
        port: int = 0,
        ui_dir: Path | None = None,
        register: bool = True,
    ) -> None:
        self.ctx = api.Context(audit_dir=audit_dir, policy_path=policy_path)
        self.token = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)
        self.stop_event = threading.Event()
        self._ui_dir = ui_dir
        self._register = register
        self._port_file: Path | None = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    @property
    def origins(self) -> tuple[str, ...]:
        return (f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}")

    def start(self) -> None:
        """Record the port (the sandboxes' deny) first, then serve on a thread."""
        if self._register:
            from sandbox.host.dashboards import register_port

            self._port_file = register_port(self.port, self._ui_dir)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="landgate-ui", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._port_file is not None:
            from sandbox.host.dashboards import unregister

            unregister(self._port_file)
            self._port_file = None


def serve(
    audit_dir: Path, policy_path: Path, *, port: int = 0, on_url: Callable[[str], None]
) -> None:
    """Run until interrupted (KeyboardInterrupt ends it; the port file is removed)."""
    dash = Dashboard(audit_dir, policy_path, port=port)
    dash.start()
    on_url(dash.url)
    try:
        while not dash.stop_event.wait(3600):
            pass
    finally:
        dash.close()


def _handler_for(dash: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        dashboard = dash

    return Handler


class _Handler(BaseHTTPRequestHandler):
    dashboard: Dashboard
    server_version = "landgate-ui"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the library never prints; a request log is not the user's business here

    # ---- responses -------------------------------------------------------------
    def _headers(self, status: int, ctype: str, length: int | None, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", CSP)
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str, **extra: str) -> None:
        self._headers(status, ctype, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        body = json.dumps(value, default=str).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _refuse(self, status: int, why: str) -> None:
        self.close_connection = True
        self._send(status, f"{status}: {why}\n".encode(), "text/plain; charset=utf-8")

    # ---- checks ----------------------------------------------------------------
    def _host_ok(self) -> bool:
        host = self.headers.get("Host", "")
        port = self.dashboard.port
        return host in (f"127.0.0.1:{port}", f"localhost:{port}")

    def _token_from_cookie(self) -> str:
        raw = self.headers.get("Cookie")
        if not raw:
            return ""
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return ""
        morsel = jar.get(COOKIE)
        return morsel.value if morsel is not None else ""

    def _authorised(self, query: dict[str, list[str]]) -> tuple[bool, bool]:
        """(authorised, came with the URL token)."""
        want = self.dashboard.token.encode()
        if hmac.compare_digest(self._token_from_cookie().encode(), want):
            return True, False
        given = query.get("token", [""])[0].encode()
        return hmac.compare_digest(given, want), True

    # ---- methods ---------------------------------------------------------------
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if not self._host_ok():
            return self._refuse(403, "wrong Host")
        ok, via_url = self._authorised(query)
        if not ok:
            return self._refuse(403, "missing or wrong token (use the URL `landgate ui` printed)")
        if via_url:
            # the token moves to a cookie and leaves the address bar (and the history)
            cookie = f"{COOKIE}={self.dashboard.token}; HttpOnly; SameSite=Strict; Path=/"
            self._headers(303, "text/plain", 0, {"Location": "/", "Set-Cookie": cookie})
            return None
        path = parts.path
        if path in STATIC:
            name, ctype = STATIC[path]
            body = _static(name)
            if name == "index.html":
                body = body.replace(b"{{CSRF}}", self.dashboard.csrf.encode())
            return self._send(200, body, ctype)
        if path == "/api/events":
            return self._events()
        route = api.GET.get(path)
        if route is None:
            return self._refuse(404, "no such page")
        params = {k: v[0] for k, v in query.items()}
        return self._run(route, params)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._host_ok():
            return self._refuse(403, "wrong Host")
        if self.headers.get("Origin") not in self.dashboard.origins:
            return self._refuse(403, "foreign or missing Origin")
        ok, via_url = self._authorised({})
        if not ok or via_url:
            return self._refuse(403, "missing or wrong token")
        csrf = self.headers.get("X-Landgate-CSRF", "").encode()
        if not hmac.compare_digest(csrf, self.dashboard.csrf.encode()):
            return self._refuse(403, "missing or wrong CSRF token")
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._refuse(415, "JSON only")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self._refuse(400, "bad Content-Length")
        if not 0 <= length <= MAX_BODY:
            return self._refuse(413, "body too large")
        try:
            params = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._refuse(400, "body is not JSON")
        route = api.POST.get(urlsplit(self.path).path)
        if route is None or not isinstance(params, dict):
            return self._refuse(404, "no such action")
        return self._run(route, params)

    def _run(self, route: api.Route, params: dict[str, Any]) -> None:
        try:
            value = route(self.dashboard.ctx, params)
        except LandgateError as exc:
            return self._json(400, {"error": str(exc)})
        return self._json(200, value)

    def _events(self) -> None:
        """Server-sent events: the trail's new entries, batched per poll, until disconnect."""
        self.close_connection = True
        self._headers(200, "text/event-stream", None, {"Connection": "close"})
        tail = sse.Tail(self.dashboard.ctx.audit_dir)
        last_write = time.monotonic()
        stop = self.dashboard.stop_event
        try:
            while not stop.is_set():
                lines = tail.poll()
                if lines:
                    self.wfile.write(sse.event_bytes(lines))
                    self.wfile.flush()
                    last_write = time.monotonic()
                    continue  # more may be waiting: poll again at once
                if time.monotonic() - last_write > 15:
                    self.wfile.write(sse.keepalive())
                    self.wfile.flush()
                    last_write = time.monotonic()
                stop.wait(sse.POLL_S)
        except (BrokenPipeError, ConnectionResetError):
            return
