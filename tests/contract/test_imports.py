"""The import graph flows one way.

policy → host → plan → launch / supervise / net → session → api → integrations → cli → entry.

Built from the package's own source (ast), so a function-level (lazy) import
counts as much as a module-level one.  A back edge fails with the importing
module, its line and the edge.  `audit` sits beside the session's inputs: it may
import `policy` (types, the evaluator for `suggest`), and launch / supervise /
net / session may import it, never the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sandbox"

# rank: a module may import its own layer and lower ranks, never a higher rank, and
# never a different layer of the same rank (peers stay independent).
RANK = {
    "errors": 0,
    "record": 0,  # frozen value classes without dataclasses (standard library only)
    "_version": 0,
    "digest": 0,  # SHA-256 / HMAC / tokens without OpenSSL (standard library only)
    "keyfile": 0,  # the key files of the trail and the policy cache (standard library only)
    "sockio": 0,  # one bounded request read off a unix socket (standard library only)
    "netlink": 0,  # netlink framing for rtnetlink and nf_tables (standard library only)
    "threads": 0,  # reusable worker threads for a session's helpers (standard library only)
    "policy": 1,
    "host": 2,
    "plan": 3,
    "audit": 4,
    "launch": 5,
    "supervise": 5,
    "net": 5,
    "session": 6,
    "api": 7,
    "setup": 7,  # `landgate init` and the policy edits: policy, host (the rung)
    "integrations": 8,  # the Claude Code hook, MCP server, LangChain tools: built on the API
    "": 8,  # sandbox/__init__.py re-exports the API
    "ui": 8,  # `landgate ui`: reads the trail (audit), edits the policy (setup)
    "cliargs": 8,  # the command line's arguments as data (argparse only): read by cli
    "cli": 9,  # `landgate hook` / `landgate mcp` parse arguments and call integrations
    "entry": 10,  # the `landgate` command: `hook claude-code` to the hook client, else cli
    "__main__": 11,
}
# C extensions (sandbox._launch, ...) are primitives: any layer may call them.
EXTENSIONS = {"_launch", "_probe", "_supervise"}


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_edges(root: Path = PACKAGE) -> list[tuple[str, int, str]]:
    """(importing module, line, imported module) for every sandbox.* import under root."""
    edges: list[tuple[str, int, str]] = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges += [(module, node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                edges.append((module, node.lineno, target))
                # `from sandbox import session` imports the sub-package session
                edges += [(module, node.lineno, f"{target}.{a.name}") for a in node.names]
    return [(m, line, t) for m, line, t in edges if t == "sandbox" or t.startswith("sandbox.")]


def back_edges(edges: list[tuple[str, int, str]]) -> list[str]:
    """One message per offending import statement."""
    bad: dict[tuple[str, int], str] = {}
    for module, line, target in edges:
        if (module, line) in bad:
            continue
        src, dst = _layer(module), _layer(target)
        if dst in EXTENSIONS or src == dst or target == "sandbox":
            continue
        if src not in RANK or dst not in RANK:
            # `from sandbox.x import name`: the name edge may not be a module; the module
            # edge of the same import is judged.  A new top-level layer must get a rank.
            if dst not in RANK and target.count(".") >= 2:
                continue
            bad[module, line] = (
                f"{module}:{line}: {src or 'sandbox'} -> {dst}: layer without a rank"
            )
            continue
        if RANK[dst] > RANK[src] or (RANK[dst] == RANK[src] and src != dst):
            bad[module, line] = (
                f"{module}:{line}: {src or 'sandbox'} -> {dst} ({target}) is a back edge"
            )
    return sorted(bad.values())


def test_the_package_imports_one_way() -> None:
    edges = import_edges()
    assert len(edges) > 100  # the walk found the package's imports
    assert back_edges(edges) == []


def test_every_layer_has_a_rank() -> None:
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert layers | modules <= set(RANK) | EXTENSIONS


@pytest.mark.parametrize(
    ("module", "source", "edge"),
    [
        ("plan/extra.py", "from sandbox.net.session import NetworkSession\n", "plan -> net"),
        ("policy/extra.py", "def f():\n    import sandbox.plan\n", "policy -> plan"),
        ("audit/extra.py", "from sandbox.session import run_session\n", "audit -> session"),
        ("net/extra.py", "from ..launch import spawn\n", "net -> launch"),
    ],
)
def test_a_back_edge_fails(tmp_path: Path, module: str, source: str, edge: str) -> None:
    """The check itself can fail: a copy of the package with one back edge added."""
    import shutil

    copy = tmp_path / "sandbox"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    assert back_edges(import_edges(copy)) == []  # the twin: the unchanged copy passes
    (copy / module).write_text(source)
    found = back_edges(import_edges(copy))
    assert len(found) == 1 and edge in found[0], found
