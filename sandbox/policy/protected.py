"""landgate's protected paths (DESIGN §2, "Carve-outs and protected paths").

Write denies (origin "protected") of the files that would run code outside the
sandbox later (shell start-up files, git hooks and config, autostart and systemd
user units), of the policy file and the files it extends, of the audit trail; read
and write denies of the key directory, which no policy allow overrides.  Appended to
the user's blocks at load time (`parse.py`), like the baseline (`baseline.py`, which
re-exports these names).  Apart from the baseline because these depend on the session
(its home, policy file and audit directory) and carry the audit trail's own locations;
the baseline is a fixed table.  Keep every entry explicit here, with the reason it exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sandbox.policy.model import Policy, Rule, SourceRef
from sandbox.policy.patterns import normalize_path, parse_path_pattern
from sandbox.record import replace

_PROTECTED_SOURCE = SourceRef(file="<protected paths>", line=0, column=0)
_AUDIT_TRAIL_WHY = "the audit trail: the agent must not rewrite history"

# Shell and session start-up files: writing one makes code run in the user's next
# (unsandboxed) shell, the classic persistence path (DESIGN §2).
HOME_STARTUP_FILES: tuple[str, ...] = (
    "~/.bashrc",
    "~/.bash_profile",
    "~/.bash_login",
    "~/.bash_logout",
    "~/.profile",
    "~/.zshrc",
    "~/.zshenv",
    "~/.zprofile",
    "~/.zlogin",
    "~/.zlogout",
    "~/.config/fish/",
    "~/.inputrc",
    "~/.pam_environment",
    # Other ways to get code run outside the sandbox later:
    "~/.ssh/authorized_keys",
    "~/.ssh/rc",
    "~/.ssh/config",  # remote login, ProxyCommand
    "~/.gitconfig",
    "~/.config/git/",  # core.hooksPath, aliases, credential helpers
    "~/.config/autostart/",
    "~/.config/systemd/user/",
    "~/.local/share/systemd/",
    "~/.xprofile",
    "~/.xsessionrc",
)

# Repository files that run code on the user's next git command, at any depth.
# `.git/config` (and the other config files) may still change through a rename that
# csrc/gitcfg.c judges on content: `git config user.name x` works, `core.pager` does not.
LOCAL_POLICY_NAME = ".landgate.yaml"  # sandbox/policy/loader.py choose_policy
REPO_PROTECTED: tuple[str, ...] = (
    ".git/config",
    ".git/config.worktree",
    ".git/modules/**/config",
)
# Hook directories: every name in them but `*.sample` (git init and clone write those and
# git never runs them), and anything in a subdirectory.  The directory itself is not
# denied (git init makes it; an empty directory runs nothing); renaming a prepared tree
# onto it is refused because protected paths lie beneath it (csrc/supervise_fsop.c).
HOOK_DIRS: tuple[str, ...] = (".git/hooks", ".git/modules/**/hooks")
_SAMPLE = ".sample"


def hook_globs(base: str) -> list[str]:
    """Globs matching every name in `base` that does not end in ".sample", and everything
    in its subdirectories (globs have no negation: one glob per position of the suffix)."""
    out = [f"{base}/*[!{_SAMPLE[-1]}]"]
    for k in range(1, len(_SAMPLE)):
        tail = _SAMPLE[len(_SAMPLE) - k :]
        ch = _SAMPLE[len(_SAMPLE) - k - 1]
        out.append(f"{base}/*[!{ch}]{tail}")  # ends in `tail`, the character before differs
        if ch != ".":
            out.append(f"{base}/{tail}")  # exactly `tail`: nothing before it
    out.append(f"{base}/{_SAMPLE[1:]}")
    out.append(f"{base}/*/*/**")
    return list(dict.fromkeys(out))


def _state_dirs(home: str) -> tuple[str, str]:
    """(XDG state base, XDG config base) for `home`, as the XDG spec defaults them."""
    return home.rstrip("/") + "/.local/state", home.rstrip("/") + "/.config"


def default_audit_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """$XDG_STATE_HOME/landgate/audit, else ~/.local/state/landgate/audit."""
    env = os.environ.get("XDG_STATE_HOME", "")
    if env.startswith("/"):
        return Path(env) / "landgate" / "audit"
    base = Path(home) if home is not None else Path.home()
    return base / ".local" / "state" / "landgate" / "audit"


def key_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """landgate's key directory: $XDG_CONFIG_HOME/landgate, else ~/.config/landgate."""
    env = os.environ.get("XDG_CONFIG_HOME", "")
    if env.startswith("/"):
        return Path(env) / "landgate"
    base = Path(home) if home is not None else Path.home()
    return base / ".config" / "landgate"


def entry_rules(
    entries: Iterable[tuple[str, str, str, str, bool]],
    *,
    origin: str,
    source: SourceRef,
    home: str,
    workspace: str,
) -> list[Rule]:
    """(action, effect, pattern, why, overridable) entries as `Rule`s of `origin`, numbered
    per action (the baseline's and the protected paths' one constructor)."""
    counters: dict[str, int] = {}
    rules: list[Rule] = []
    for action, effect, pattern, _why, overridable in entries:
        counters[action] = counters.get(action, 0) + 1
        rules.append(
            Rule(
                action=action,
                index=counters[action],
                effect=effect,  # type: ignore[arg-type]
                pattern=pattern,
                source=source,
                origin=origin,  # type: ignore[arg-type]
                path=parse_path_pattern(pattern, workspace=workspace, home=home),
                overridable=overridable,
            )
        )
    return rules


def protected_entries(
    policy_path: str | os.PathLike[str] | None,
    home: str | os.PathLike[str],
    audit_dir: str | os.PathLike[str] | None = None,
) -> list[tuple[str, str, str, str, bool]]:
    """The protected paths as (action, effect, pattern, why, overridable) entries."""
    home_s = normalize_path(str(home))
    out: list[tuple[str, str, str, str, bool]] = []
    for p in HOME_STARTUP_FILES:
        out.append(
            ("file_write", "deny", p, "runs code outside the sandbox later (persistence)", True)
        )
    for base in HOOK_DIRS:
        for p in hook_globs(base):
            out.append(
                (
                    "file_write",
                    "deny",
                    p,
                    "git runs hooks on the next git command (every name but *.sample)",
                    True,
                )
            )
    for p in REPO_PROTECTED:
        out.append(
            (
                "file_write",
                "deny",
                p,
                "git runs hooks / config-named programs on the next git command",
                True,
            )
        )
    # The file `landgate run` loads when given no --policy, in whatever directory it runs
    # from: an agent that writes one (where none exists yet, or one the session does not
    # use) chooses the rules of the next session started there (persistence).
    out.append(
        (
            "file_write",
            "deny",
            LOCAL_POLICY_NAME,
            (
                "the policy file landgate run loads from the directory it runs in: "
                "an agent must not write the next session's rules"
            ),
            True,
        )
    )
    if policy_path is not None:
        out.append(
            (
                "file_write",
                "deny",
                normalize_path(os.fspath(policy_path)),
                "the policy file itself: an agent must not rewrite its own rules",
                True,
            )
        )
    # The audit trail: the default location (both the spec default under this home and
    # $XDG_STATE_HOME when set) and the directory this session really writes to.
    state_base, config_base = _state_dirs(home_s)
    audit_dirs = {state_base + "/landgate/", str(default_audit_dir(home_s).parent) + "/"}
    if audit_dir is not None:
        audit_dirs.add(normalize_path(os.fspath(audit_dir)) + "/")
    for d in sorted(audit_dirs):
        out.append(("file_write", "deny", d, _AUDIT_TRAIL_WHY, True))
    # The key directory holds the checkpoint HMAC key and the witness; the agent must
    # neither read nor write it, and (unlike the other protected paths) no policy
    # allow overrides that: it would void the audit trail's tamper evidence.
    keys = {config_base + "/landgate/", str(key_dir(home_s)) + "/"}
    for d in sorted(keys):
        out.append(
            ("file_write", "deny", d, "landgate's key directory (checkpoint key, witness)", False)
        )
        out.append(
            ("file_read", "deny", d, "landgate's key directory (checkpoint key, witness)", False)
        )
    return out


def protected_paths(
    policy_path: str | os.PathLike[str] | None,
    home: str | os.PathLike[str],
    audit_dir: str | os.PathLike[str] | None = None,
    *,
    workspace: str | os.PathLike[str] = "/",
) -> list[Rule]:
    """The protected-path rules (origin "protected") for this policy file, home and audit dir.

    file_write denies of shell start-up files, `.git/hooks/` and `.git/config`
    at any depth, the policy file, the audit directory and the key directory;
    a file_read deny of the key directory.  A write deny with `overridable`
    yields only to a policy `allow` naming that exact path (see evaluate.py);
    the key directory's rules never yield.
    """
    home_s = normalize_path(os.fspath(home))
    return entry_rules(
        protected_entries(policy_path, home_s, audit_dir),
        origin="protected",
        source=_PROTECTED_SOURCE,
        home=home_s,
        workspace=normalize_path(os.fspath(workspace)),
    )


def protected_reason(rule: Rule) -> str:
    return "protected path" if rule.origin == "protected" else ""


def extended_policy_files(
    files: Iterable[str | os.PathLike[str]], home: str, *, workspace: str, after: int = 0
) -> list[Rule]:
    """Write denies (origin "protected") for the policy files a policy extends: a parent
    is part of the policy, so the agent must not rewrite it either."""
    entries = [
        (
            "file_write",
            "deny",
            normalize_path(os.fspath(f)),
            "a policy file this policy extends: an agent must not rewrite its own rules",
            True,
        )
        for f in files
    ]
    rules = entry_rules(
        entries, origin="protected", source=_PROTECTED_SOURCE, home=home, workspace=workspace
    )
    # numbered after the other protected write rules (`after`) so every ref stays distinct
    return [replace(r, index=r.index + after) for r in rules]


def with_audit_dir(policy: Policy, audit_dir: str | os.PathLike[str]) -> Policy:
    """`policy` with the protected write deny of `audit_dir`, the directory a session writes
    its trail to, when the policy does not carry it yet.

    A policy loaded from its file for a session gets this rule from the loader (the
    session's audit directory is one of its arguments).  A `sandbox.Policy` the caller
    loaded before, without that directory, does not: `sandbox.run(..., policy=p,
    audit="/ws/trail")` would leave a trail inside a writable tree open to the agent, which
    could then append forged lines to it (DESIGN §5: the agent cannot write the trail).
    The rule is the loader's own entry for that directory, numbered after the policy's
    protected write rules; the caller's object is left as it is (a changed copy)."""
    pattern = normalize_path(os.fspath(audit_dir)) + "/"
    block = policy.blocks["file_write"]
    if any(r.origin == "protected" and r.pattern == pattern for r in block.rules):
        return policy
    # The copy is kept on the caller's object: a framework passes one loaded Policy to every
    # run, and the copy's own cache (the evaluator's index, the tables memo) must outlive a
    # run, or each run compiles them again (+1.6 ms per sandbox.run, measured).
    memo_key = "protected.with_audit_dir:" + pattern
    kept = policy.cache.get(memo_key)
    if kept is not None:
        return kept  # type: ignore[no-any-return]
    (rule,) = entry_rules(
        [("file_write", "deny", pattern, _AUDIT_TRAIL_WHY, True)],
        origin="protected",
        source=_PROTECTED_SOURCE,
        home=str(policy.home),
        workspace=str(policy.workspace),
    )
    after = sum(r.origin == "protected" for r in block.rules)
    blocks = dict(policy.blocks)
    blocks["file_write"] = replace(block, rules=(*block.rules, replace(rule, index=after + 1)))
    # A fresh cache: the evaluator's compiled index belongs to the rules it was built from.
    derived = replace(policy, blocks=blocks, cache={})
    policy.cache[memo_key] = derived
    return derived
