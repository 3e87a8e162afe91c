"""The shared corpus: one policy and the cases every layer must decide alike.

Each case: (action, target, expected effect, the pattern of the deciding rule or
None for the default).  Targets for shell_exec are argv lists (what execve gets).
Paths: "pass" means no rule denies the path (Landlock's grants then decide).
Every denial has an allowed twin next to it.
"""

from __future__ import annotations

import os
import shlex

HOME = os.path.expanduser("~")


def nest(depth: int, inner: str, shell: str = "sh") -> list[str]:
    """`sh -c "sh -c '...inner...'"`, `depth` shells deep, as argv."""
    line = inner
    for _ in range(depth):
        line = f"{shell} -c {shlex.quote(line)}"
    return shlex.split(line)


POLICY = """\
version: 1
extends: []
workspace: /ws
actions:
  - action: shell_exec
    defaultEffect: deny
    rules:
      - { command: "env *", effect: allow }
      - { command: "id*", effect: deny }
      - { command: "nice *", effect: allow }
      - { command: "timeout *", effect: allow }
      - { command: "curl*", effect: deny }
      - { command: "git *", effect: allow }
      - { command: "ls*", effect: allow }
      - { command: "sh *", effect: allow }
      - { command: "/usr/bin/wget *", effect: deny }
      - { command: "wget *", effect: allow }
      - { command: "busybox *", effect: allow }
      - { command: "caf? *", effect: allow }
  - action: file_read
    defaultEffect: allow
    rules:
      - { path: "/home/u/?.txt", effect: deny }
      - { path: "/data/**/secret", effect: deny }
      - { path: "**/.env", effect: deny }
      - { path: "/srv/[a-c]*.key", effect: deny }
      - { path: "/srv/[!a-c]*.pub", effect: deny }
      - { path: "/logs/**", effect: deny }
  - action: file_write
    defaultEffect: deny
    rules:
      - { path: "/ws/**", effect: allow }
      - { path: "/ws/*/?.lock", effect: deny }
      - { path: "~/.bashrc", effect: allow }
      - { path: "~/.config/git/config", effect: allow }
      - { path: "~/.config/landgate/key", effect: allow }
  - action: network
    defaultEffect: allow
    rules:
      - { destination: "unix:/run/user/*/bus", effect: deny }
      - { destination: "unix:/run/docker.sock", effect: deny }
      - { destination: "unix:/tmp/**/ok.sock", effect: allow }
      - { destination: "unix:@/tmp/.X11-unix/X?", effect: deny }
"""

E = "shell_exec"
CASES: list[tuple[str, object, str, str | None]] = [
    # wrappers: judged as written AND unwrapped
    (E, ["env", "id"], "deny", "id*"),
    (E, ["env", "ls", "-l"], "allow", "ls*"),
    (E, ["env", "-i", "-u", "HOME", "A=b", "id", "-u"], "deny", "id*"),
    (E, ["env", "true"], "deny", None),  # `env *` does not launder what it runs
    (E, ["nice", "-n", "5", "curl", "x"], "deny", "curl*"),
    (E, ["nice", "-n", "5", "ls", "x"], "allow", "ls*"),
    (E, ["timeout", "3", "sh", "-c", "id"], "deny", "id*"),
    (E, ["timeout", "3", "sh", "-c", "ls"], "allow", "sh *"),
    (E, ["timeout", "-s", "KILL", "3", "env", "nice", "curl", "x"], "deny", "curl*"),
    (E, ["/usr/bin/env", "id"], "deny", "id*"),
    (E, ["env", "-S", "id -u"], "allow", "env *"),  # -S hides the command: judged as written
    # busybox applets
    (E, ["busybox", "id"], "deny", "id*"),
    (E, ["busybox", "ls"], "allow", "ls*"),
    (E, ["busybox", "sh", "-c", "curl x"], "deny", "curl*"),
    (E, ["busybox", "sh", "-c", "ls x"], "allow", "sh *"),
    # shells and their -c strings, other shells too
    (E, ["bash", "-c", "git log; curl x"], "deny", "curl*"),
    (E, ["bash", "-c", "git log && ls"], "allow", "git *"),
    (E, ["rbash", "-c", "id"], "deny", "id*"),
    (E, ["fish", "-c", "curl x | ls"], "deny", "curl*"),
    (E, ["dash", "-ec", "ls; git status"], "allow", "ls*"),
    (E, ["bash", "-o", "pipefail", "-c", "A=1 id"], "deny", "id*"),
    (E, ["bash", "-c", "if true; then curl x; fi"], "deny", "curl*"),
    # the program named by path
    (E, ["/usr/bin/wget", "http://x"], "deny", "/usr/bin/wget *"),
    (E, ["/usr/local/bin/wget", "http://x"], "allow", "wget *"),
    # '?' is one character, not one byte
    (E, ["café", "x"], "allow", "caf? *"),
    (E, ["cafée", "x"], "deny", None),
    (E, ["git", "status"], "allow", "git *"),
    (E, ["curl", "x"], "deny", "curl*"),
    # paths
    ("file_read", "/home/u/é.txt", "deny", "/home/u/?.txt"),
    ("file_read", "/home/u/ab.txt", "pass", None),
    ("file_read", "/home/u/\udcff.txt", "deny", "/home/u/?.txt"),  # one undecodable byte
    ("file_read", "/home/u/\udcc3\udca9x.txt", "pass", None),
    ("file_read", "/home/u/😀.txt", "deny", "/home/u/?.txt"),
    ("file_read", "/data/secret", "deny", "/data/**/secret"),  # a/**/b matches a/b
    ("file_read", "/data/x/y/secret", "deny", "/data/**/secret"),
    ("file_read", "/data/secretx", "pass", None),
    ("file_read", "/ws/.env", "deny", "**/.env"),
    ("file_read", "/ws/a/b/.env", "deny", "**/.env"),
    ("file_read", "/ws/.envrc", "pass", None),
    ("file_read", "/srv/b1.key", "deny", "/srv/[a-c]*.key"),
    ("file_read", "/srv/d1.key", "pass", None),
    ("file_read", "/srv/d.pub", "deny", "/srv/[!a-c]*.pub"),
    ("file_read", "/srv/a.pub", "pass", None),
    ("file_read", "/SRV/b1.key", "pass", None),  # case matters
    ("file_read", "/logs", "deny", "/logs/**"),  # a/** is a itself too
    ("file_read", "/logs/2026/x.log", "deny", "/logs/**"),
    ("file_read", "/logsx", "pass", None),
    ("file_write", "/ws/sub/é.lock", "deny", "/ws/*/?.lock"),
    ("file_write", "/ws/sub/ab.lock", "pass", None),
    # protected paths: an allow naming the exact path overrides, in the open check too
    ("file_write", f"{HOME}/.bashrc", "pass", None),
    ("file_write", f"{HOME}/.profile", "deny", "~/.profile"),
    ("file_write", f"{HOME}/.config/git/config", "pass", None),
    ("file_write", f"{HOME}/.config/git/ignore", "deny", "~/.config/git/"),
    ("file_write", f"{HOME}/.config/landgate/key", "deny", f"{HOME}/.config/landgate/"),  # never
    # unix sockets
    ("network", "unix:/run/user/1000/bus", "deny", "unix:/run/user/*/bus"),
    ("network", "unix:/run/user/1000/x/bus", "allow", None),
    ("network", "unix:/run/docker.sock", "deny", "unix:/run/docker.sock"),
    ("network", "unix:/tmp/a/b/ok.sock", "allow", "unix:/tmp/**/ok.sock"),
    ("network", "unix:/tmp/ok.sock", "allow", "unix:/tmp/**/ok.sock"),
    ("network", "unix:@/tmp/.X11-unix/X0", "deny", "unix:@/tmp/.X11-unix/X?"),
    ("network", "unix:@/tmp/.X11-unix/X10", "allow", None),
]
# nested shells at every depth: a denial inside is seen through SHELL_DEPTH strings;
# deeper, the outer `sh *` allow decides and the inner exec meets its own check at run time
for depth in range(1, 7):
    deep = depth > 4
    CASES.append(
        (E, nest(depth, "curl x"), "allow" if deep else "deny", "sh *" if deep else "curl*")
    )
    CASES.append((E, nest(depth, "ls x"), "allow", "sh *"))
