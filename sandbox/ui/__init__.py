"""`landgate ui`: the local dashboard (live decisions, sessions, denials, review, trail, policy).

server.py (HTTP on 127.0.0.1, the token, Host/Origin/CSRF checks), api.py (the JSON
routes), sse.py (the live tail of the trail), data.py (what the pages show, read
from the trail), static/ (the page, its script and style: package data, no CDN,
works offline).  Changes to ./.landgate.yaml go through sandbox.setup.policyedit.
"""

from sandbox.ui.server import Dashboard, serve

__all__ = ["Dashboard", "serve"]
