"""Judge a git config file's new content: refuse keys that make git run a program.

Parsed by git itself (`git config --file - --list --null --no-includes`), so the judge and
the git that later reads the file cannot disagree about what a key is (git's syntax has
quoting, continuation lines, case-folded section and key names, case-kept subsections).
Only entries that are NEW in the new content are judged: a key the user set before the
session (their own core.pager) does not stop the agent's `git config user.name x`.
"""

import fnmatch
import subprocess

# Keys (git's --list spelling: section and name lower-case, subsection as written) whose
# value git runs, or that make git read or write another file we do not judge.
RUNS_PROGRAM = [
    "core.pager",
    "core.editor",
    "core.askpass",
    "core.sshcommand",
    "core.gitproxy",
    "core.hookspath",
    "core.fsmonitor",
    "core.alternaterefscommand",
    "core.worktree",  # git checkout would write the work tree elsewhere (e.g. into ~)
    "core.attributesfile",
    "sequence.editor",
    "diff.external",
    "diff.*.command",
    "*.textconv",
    "filter.*",
    "merge.*.driver",
    "difftool.*.cmd",
    "mergetool.*.cmd",
    "credential.helper",
    "credential.*.helper",
    "gpg.program",
    "gpg.*.program",
    "pager.*",
    "include.*",
    "includeif.*",
    "uploadpack.packobjectshook",
    "remote.*.uploadpack",
    "remote.*.receivepack",
    "remote.*.vcs",
    "protocol.*",  # protocol.ext.allow=always + an ext:: url runs a command
    "url.*.insteadof",
    "url.*.pushinsteadof",
    "sendemail.*",
    "web.browser",
    "browser.*",
    "man.*",
    "instaweb.*",
    "trace2.*",
    "extensions.worktreeconfig",
    "ssh.variant",
]


def parse(data: bytes) -> list[tuple[str, str | None]]:
    """[(key, value or None for a bare boolean)]; raises ValueError if git cannot parse it."""
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}
    p = subprocess.run(
        ["git", "config", "--file", "-", "--list", "--null", "--no-includes"],
        input=data,
        capture_output=True,
        env=env,
        check=False,
    )
    if p.returncode != 0:
        raise ValueError(p.stderr.decode(errors="replace").strip() or "git config failed")
    out = []
    for item in p.stdout.split(b"\0"):
        if not item:
            continue
        key, nl, value = item.decode(errors="replace").partition("\n")
        out.append((key, value if nl else None))
    return out


def reason(key: str, value: str | None) -> str | None:
    """Why this entry may make git run a program, or None."""
    if key.startswith("alias.") and value is not None and value.lstrip().startswith("!"):
        return "alias runs a shell command"
    if key.startswith("submodule.") and key.endswith(".update") and (value or "").startswith("!"):
        return "submodule update runs a command"
    for pat in RUNS_PROGRAM:
        if fnmatch.fnmatchcase(key.lower(), pat):
            return f"matches {pat}"
    return None


def judge(old: bytes, new: bytes) -> list[tuple[str, str | None, str]]:
    """The entries new content adds that may run a program; [] means the write may go in.

    A parse error in the new content is a refusal (fail closed)."""
    try:
        after = parse(new)
    except ValueError as e:
        return [("(unparseable)", None, str(e))]
    try:
        before = parse(old) if old else []
    except ValueError:
        before = []
    remaining = list(before)
    bad = []
    for key, value in after:
        if (key, value) in remaining:
            remaining.remove((key, value))  # present before the session: not the agent's
            continue
        why = reason(key, value)
        if why:
            bad.append((key, value, why))
    return bad


if __name__ == "__main__":
    import sys

    def content(path):
        with open(path, "rb") as f:
            return f.read()

    old = content(sys.argv[1]) if len(sys.argv) > 2 else b""
    new = content(sys.argv[-1])
    for key, value, why in judge(old, new):
        print(f"refuse {key}={value!r}: {why}")
