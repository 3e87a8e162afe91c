"""Denials that teach (issue 15): the sandbox's stderr line names the policy file the user
owns and, when a policy allow could admit the action (the block's default denied it), the
fix as a `landgate allow` command line; an explicit deny (which no allow overrides) gets no
such hint.  Simulation and enforcement judge a symlinked file on the same object."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from launch.lg_helpers import landgate

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("landlock_and_notify")]


def _policy(world) -> Path:
    return world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: deny
    rules:
      - {{ command: "sh task.sh", effect: allow, inherit: false }}
      - {{ command: "cat *", effect: allow, inherit: false }}
      - {{ command: "od*", effect: deny }}
  - action: network
    defaultEffect: allow
""",
        name="teach.yaml",
    )


def _lines(stderr: bytes) -> list[str]:
    return [x for x in stderr.decode().splitlines() if x.startswith("landgate: denied")]


def test_default_deny_line_names_the_file_and_the_fix(world):
    (world.workspace / "task.sh").write_text("cat src/app.ts\nls -l src\nwc\n")
    pol = _policy(world)
    p = landgate(world, ["sh", "task.sh"], policy=pol)
    assert b"answer = 42" in p.stdout  # the allowed twin: cat ran
    lines = _lines(p.stderr)
    assert (
        f'landgate: denied shell_exec "ls -l src" (default deny; {pol}:10) '
        "\u2014 allow with: landgate allow shell_exec 'ls *'"
    ) in lines, lines
    # no arguments: the program alone, so the hint admits exactly what was refused
    assert any(x.endswith("landgate allow shell_exec 'wc'") for x in lines), lines
    assert all(len(x.splitlines()) == 1 for x in lines)


def test_explicit_deny_gets_no_allow_hint(world):
    (world.workspace / "task.sh").write_text("cat src/app.ts\nod -c src/app.ts\n")
    pol = _policy(world)
    p = landgate(world, ["sh", "task.sh"], policy=pol)
    assert b"answer = 42" in p.stdout
    lines = _lines(p.stderr)
    od = [x for x in lines if '"od -c src/app.ts"' in x]
    assert od and f"rule 3, {pol}:14" in od[0], lines
    # an allow would not win over this deny: no hint that cannot work
    assert "allow with" not in od[0]


def test_a_preset_is_named_not_its_site_packages_path(world):
    # the bundled preset, as a user runs it: the line names `coding-agent preset`
    (world.workspace / "task.sh").write_text("cat src/app.ts\nssh-keygen -y -f /dev/null\n")
    p = landgate(world, ["sh", "task.sh"], policy=Path("coding-agent"))
    assert b"answer = 42" in p.stdout
    lines = _lines(p.stderr)
    assert any(
        '"ssh-keygen -y -f /dev/null" (rule ' in x and "coding-agent preset:" in x for x in lines
    ), lines
    assert not any("site-packages" in x or "/presets/" in x for x in lines), lines


def _decisions(world) -> list[dict]:
    trail = world.root / "xdg" / "state" / "landgate" / "audit"
    out: list[dict] = []
    for seg in sorted(trail.glob("trail-*.jsonl")):
        out += [json.loads(x) for x in seg.read_bytes().splitlines() if x.strip()]
    return [e for e in out if e.get("type") == "decision"]


def _system_pem_link() -> tuple[Path, Path]:
    """A CA certificate as Debian installs it: /etc/ssl/certs/X.pem -> ...X.crt."""
    for link in sorted(Path("/etc/ssl/certs").glob("*.pem")):
        if link.is_symlink() and not os.path.realpath(link).endswith(".pem"):
            return link, Path(os.path.realpath(link))
    pytest.fail("no symlinked /etc/ssl/certs/*.pem: the Makefile installs ca-certificates")


def test_simulation_judges_the_name_and_the_object_like_enforcement(world):
    """Contract, one semantics: an open is judged on the name as spelled AND on the object
    it reaches, deny winning, in enforcement (the supervisor's open check) and simulation
    alike.  A denied name stays denied whatever it points to (/etc/ssl/certs/X.pem ->
    .../X.crt under a `**/*.pem` deny; the same holds for `.env -> ../shared/env.local`);
    a denied object is denied under any name (notes.txt -> .env).  Twin: the .crt spelled
    as itself is read in both modes."""
    link, real = _system_pem_link()
    (world.workspace / "notes.txt").symlink_to(world.workspace / ".env")
    pol = world.write_policy(
        f"""\
version: 1
workspace: {world.workspace}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "**/.env", effect: deny }}
      - {{ path: "**/*.pem", effect: deny }}
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: allow
""",
        name="links.yaml",
    )
    enforced = landgate(world, ["cat", str(link)], policy=pol)
    assert b"BEGIN CERTIFICATE" not in enforced.stdout, enforced.stderr
    assert f'denied file_read "{link}" (rule 2'.encode() in enforced.stderr, enforced.stderr
    twin = landgate(world, ["cat", str(real)], policy=pol)
    assert b"BEGIN CERTIFICATE" in twin.stdout, twin.stderr
    leak = landgate(world, ["cat", "notes.txt"], policy=pol)
    assert world.secret not in leak.stdout
    assert b'denied file_read "' in leak.stderr, leak.stderr
    for argv in (["cat", str(link)], ["cat", str(real)], ["cat", "notes.txt"]):
        landgate(world, argv, policy=pol, extra_args=["--simulate"])
    sim = [e for e in _decisions(world) if e["mode"] == "simulate" and e["action"] == "file_read"]
    pem = [e for e in sim if e["target"] == str(link)]
    assert pem and all(e["result"] == "deny" for e in pem), sim
    assert all(e["rule"].startswith("rule 2") for e in pem), pem
    crt = [e for e in sim if e["target"] == str(real) and "via" not in (e.get("detail") or "")]
    assert crt and all(e["result"] == "allow" for e in crt), sim
    env = [e for e in sim if "notes.txt" in (e.get("detail") or "")]
    assert env and all(e["result"] == "deny" for e in env), sim
    assert env[0]["target"] == str(world.workspace / ".env")
