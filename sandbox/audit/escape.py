"""Agent-controlled text, made safe for an operator's terminal.

Command lines, paths and DNS names in the trail are chosen by the agent.  Printed
raw, an ESC or OSC sequence redraws the operator's terminal (fake "allow" rows, a
changed title, a hyperlink), a CR overwrites the line and a newline forges a row
of its own.  `printable` escapes every C0 and C1 control character, DEL, the
backslash that introduces the escapes, and the Unicode line and paragraph
separators and bidirectional overrides (which reorder what the eye reads), so
one entry is always one line and what is shown is what was recorded.
"""

from __future__ import annotations

import re

# C0 controls (tab, CR and LF included), DEL, C1 controls, the backslash itself;
# Unicode line/paragraph separators and the bidi embeddings, overrides and isolates.
_UNSAFE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\\\\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def printable(value: object) -> str:
    """`value` as text with every control character escaped (`\\x1b`, `\\n`, `\\\\`)."""
    text = value if isinstance(value, str) else str(value)
    if _UNSAFE.search(text) is None:
        return text  # the common case: nothing to escape, no copy
    return _UNSAFE.sub(_escape, text)
