"""The dashboard's JSON routes: GET reads the trail and the policy, POST changes the policy.

Each route takes the Dashboard's context and the request's parameters (query
string for GET, a JSON object for POST) and returns a JSON-ready value; errors
are LandgateError with one line of text, sent as {"error": ...}.  Nothing here
knows about HTTP or the token: server.py checks those before any route runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.errors import LandgateError, UsageError
from sandbox.ui import data


@dataclass(frozen=True, slots=True)
class Context:
    audit_dir: Path
    policy_path: Path


Params = dict[str, Any]
Route = Callable[[Context, Params], Any]


def _str(params: Params, key: str, required: bool = True) -> str:
    v = params.get(key)
    if isinstance(v, str) and v:
        return v
    if required:
        raise UsageError(f"missing parameter {key!r}")
    return ""


def get_sessions(ctx: Context, params: Params) -> Any:
    return {"sessions": data.sessions(ctx.audit_dir)}


def get_session(ctx: Context, params: Params) -> Any:
    return data.session_detail(ctx.audit_dir, _str(params, "id"))


def get_denials(ctx: Context, params: Params) -> Any:
    return data.denials(ctx.audit_dir, _str(params, "session", required=False) or None)


def get_review(ctx: Context, params: Params) -> Any:
    """The would-denies of a simulated session (the last one unless named)."""
    sid = _str(params, "session", required=False)
    if not sid:
        sims = [s for s in data.sessions(ctx.audit_dir) if s["mode"] == "simulate"]
        sid = sims[0]["id"] if sims else ""
    out: dict[str, Any] = (
        data.denials(ctx.audit_dir, sid) if sid else {"session": None, "groups": None}
    )
    out["policy"] = str(ctx.policy_path)
    out["policy_mode"] = _policy_mode(ctx.policy_path)
    return out


def _policy_mode(path: Path) -> str | None:
    from sandbox.policy import load_policy

    try:
        return str(load_policy(path, cwd=path.parent).mode)
    except LandgateError:
        return None


def get_trail(ctx: Context, params: Params) -> Any:
    out = data.verify(ctx.audit_dir)
    out["directory"] = str(ctx.audit_dir)
    return out


def get_policy(ctx: Context, params: Params) -> Any:
    from sandbox.policy import load_policy
    from sandbox.policy.summary import render_check

    path = ctx.policy_path
    if not path.exists():
        return {"path": str(path), "exists": False, "check": "", "text": ""}
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        check = render_check(load_policy(path, cwd=path.parent))
        ok = True
    except LandgateError as exc:
        check, ok = str(exc), False
    return {"path": str(path), "exists": True, "ok": ok, "check": check, "text": text}


def get_explain(ctx: Context, params: Params) -> Any:
    from sandbox.policy import decide, load_policy
    from sandbox.policy.summary import render_decision

    policy = load_policy(ctx.policy_path, cwd=ctx.policy_path.parent)
    decision = decide(policy, _str(params, "action"), _str(params, "target"))
    return {"effect": decision.effect, "text": render_decision(decision)}


def _allow_proposal(ctx: Context, params: Params) -> Any:
    from sandbox.setup.policyedit import propose_allow

    return propose_allow(ctx.policy_path, _str(params, "action"), _str(params, "target"))


def post_allow_preview(ctx: Context, params: Params) -> Any:
    return _allow_proposal(ctx, params).to_dict()


def post_allow_apply(ctx: Context, params: Params) -> Any:
    """Write the change shown by the preview: only if the file is still what it was."""
    from dataclasses import replace

    from sandbox.setup.policyedit import apply

    proposal = _allow_proposal(ctx, params)
    # the sha the user saw: apply() refuses when the file has changed since
    proposal = replace(proposal, base_sha256=_str(params, "base_sha256"))
    return {"written": True, **apply(proposal).to_dict()}


def post_mode_preview(ctx: Context, params: Params) -> Any:
    from sandbox.setup.policyedit import propose_mode

    return propose_mode(ctx.policy_path, _mode(params)).to_dict()


def post_mode_apply(ctx: Context, params: Params) -> Any:
    from dataclasses import replace

    from sandbox.setup.policyedit import apply, propose_mode

    proposal = replace(
        propose_mode(ctx.policy_path, _mode(params)), base_sha256=_str(params, "base_sha256")
    )
    return {"written": True, **apply(proposal).to_dict()}


def _mode(params: Params) -> str:
    mode = _str(params, "mode")
    if mode not in ("enforce", "simulate"):
        raise UsageError(f"mode {mode!r}: enforce or simulate")
    return mode


GET: dict[str, Route] = {
    "/api/sessions": get_sessions,
    "/api/session": get_session,
    "/api/denials": get_denials,
    "/api/review": get_review,
    "/api/trail": get_trail,
    "/api/policy": get_policy,
    "/api/explain": get_explain,
}
POST: dict[str, Route] = {
    "/api/allow/preview": post_allow_preview,
    "/api/allow/apply": post_allow_apply,
    "/api/mode/preview": post_mode_preview,
    "/api/mode/apply": post_mode_apply,
}
