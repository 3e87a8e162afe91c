"""What a policy file may say: its keys, values and limits (sandbox.policy.loader)."""

from __future__ import annotations

from pathlib import Path

from sandbox.policy.layers import known_layer_names

MAX_BYTES = 1 << 20  # 1 MiB: a policy is a page of rules, not a data set
MAX_DEPTH = 32  # the deepest legitimate policy nests 5 levels
MAX_ERRORS = 20  # stop collecting after this many; the first ones are what matter

EFFECTS = ("allow", "deny")
MODES = ("enforce", "simulate")
DURABILITIES = ("batch", "strict")
FILE_ACCESS_RECORDS = ("denied", "all")  # audit.file_access
# Layer names `enforcement.require` accepts: the one vocabulary (sandbox.policy.layers).
ENFORCEMENT_LAYERS = known_layer_names()

RULE_KEY_FOR_ACTION = {
    "file_read": "path",
    "file_write": "path",
    "shell_exec": "command",
    "network": "destination",
}
PATTERN_KEYS = ("path", "command", "destination")
DOC_KEYS = ("comment", "description")
# `path: "$PATH"` in a file_read allow: every directory on PATH at load time (see toolchains.py)
PATH_ENV_PATTERN = "$PATH"

# `$schema` lets a JSON policy name policy.schema.json for editors; it is not interpreted.
TOP_KEYS = (
    "version",
    "mode",
    "workspace",
    "extends",
    "actions",
    "environment",
    "enforcement",
    "audit",
    "$schema",
    *DOC_KEYS,
)
BLOCK_KEYS = ("action", "defaultEffect", "rules", *DOC_KEYS)
ENV_KEYS = ("pass", "allow", "deny", "set", "pass_by_default", "secret_patterns")
ENFORCEMENT_KEYS = ("require", "durability")
AUDIT_KEYS = ("file_access",)

# A pattern, compiled (and cached by re) at its first use: not at import on every launch.
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ENV_GLOB = r"^[A-Za-z0-9_*?\[\]!]+$"

_PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
