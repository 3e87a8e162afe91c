"""The built-in `system` baseline and landgate's protected paths (DESIGN §2, §3).

Both are ordinary `Rule`s, distinguished by `origin` ("baseline" /
"protected"), appended to the user's blocks at load time so that every layer
and `explain` see one list.  `landgate plan` prints them; keep every entry
explicit, with the reason it exists.  The baseline is here; the protected
paths are `protected.py`'s (apart: they depend on the home, the policy file
and the audit directory, the baseline on nothing), re-exported here under
the names every caller already imports from this module.

Baseline (a policy gets it unless it says `extends: []`): what any program
needs to start and run, and nothing that is personal data.  Its read rules for
the program trees (`EXECUTABLE_TREES`) carry `exec: true`, so the planner grants
Landlock EXECUTE beneath them as it does beneath any policy rule that says so;
the supervisor still judges each exec's command line by `shell_exec`.

Limits, stated so nobody relies on more:
- `/proc/self/` is a magic link.  As a Landlock path-beneath rule it would
  name the *launcher's* /proc/<pid>, not the agent's, so the planner must
  express it differently (e.g. grant /proc read and rely on ptrace-mode
  checks for other processes' entries); the evaluator matches the spelling
  `/proc/self/...` and `/proc/thread-self/...` as given.
- `/etc/` is readable except the password/host-key files below; a host that
  keeps secrets elsewhere in /etc should add its own deny rules.
"""

from __future__ import annotations

from sandbox.policy.model import Rule, SourceRef
from sandbox.policy.protected import HOME_STARTUP_FILES as HOME_STARTUP_FILES
from sandbox.policy.protected import HOOK_DIRS as HOOK_DIRS
from sandbox.policy.protected import LOCAL_POLICY_NAME as LOCAL_POLICY_NAME
from sandbox.policy.protected import REPO_PROTECTED as REPO_PROTECTED
from sandbox.policy.protected import default_audit_dir as default_audit_dir
from sandbox.policy.protected import entry_rules
from sandbox.policy.protected import extended_policy_files as extended_policy_files
from sandbox.policy.protected import hook_globs as hook_globs
from sandbox.policy.protected import key_dir as key_dir
from sandbox.policy.protected import protected_entries as protected_entries
from sandbox.policy.protected import protected_paths as protected_paths
from sandbox.policy.protected import protected_reason as protected_reason
from sandbox.record import replace

BASELINE_NAME = "system"
KNOWN_PROFILES: tuple[str, ...] = (BASELINE_NAME,)

# Directories whose programs may be executed (Landlock EXECUTE) under the baseline.
EXECUTABLE_TREES: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")

# (action, effect, pattern, why).  Absolute patterns only: the baseline must not
# depend on the workspace or home.
SYSTEM_BASELINE: tuple[tuple[str, str, str, str], ...] = (
    # --- read: programs, libraries, configuration needed to start anything
    (
        "file_read",
        "allow",
        "/usr/",
        "programs, libraries, locale and zoneinfo data, Python's stdlib",
    ),
    ("file_read", "allow", "/bin/", "programs (a symlink to /usr/bin on merged-/usr systems)"),
    ("file_read", "allow", "/sbin/", "programs (a symlink to /usr/sbin on merged-/usr systems)"),
    ("file_read", "allow", "/lib/", "the dynamic loader's libraries"),
    ("file_read", "allow", "/lib64/", "the x86-64 ELF interpreter ld-linux-x86-64.so.2"),
    ("file_read", "allow", "/lib32/", "32-bit libraries where installed"),
    (
        "file_read",
        "allow",
        "/etc/",
        "ld.so.cache, passwd/group lookups, resolv.conf, TLS CA certificates",
    ),
    (
        "file_read",
        "allow",
        "/run/systemd/resolve/",
        "resolv.conf points here on hosts with systemd-resolved",
    ),
    ("file_read", "allow", "/dev/null", "every shell redirects to it"),
    ("file_read", "allow", "/dev/zero", "read by allocators and dd"),
    ("file_read", "allow", "/dev/full", "harmless test device"),
    ("file_read", "allow", "/dev/random", "entropy for TLS and key generation"),
    ("file_read", "allow", "/dev/urandom", "entropy for TLS, hash seeds, uuids"),
    ("file_read", "allow", "/dev/tty", "interactive agents read the controlling terminal"),
    ("file_read", "allow", "/dev/pts/", "the terminal of an interactive session"),
    ("file_read", "allow", "/dev/ptmx", "opening a pseudo-terminal (expect, script, agents' PTYs)"),
    (
        "file_read",
        "allow",
        "/proc/self/",
        "a process's own status, maps, fds (see module docstring)",
    ),
    ("file_read", "allow", "/proc/thread-self/", "a thread's own entries (glibc, Python)"),
    ("file_read", "allow", "/proc/cpuinfo", "CPU feature detection (numpy, node, compilers)"),
    ("file_read", "allow", "/proc/meminfo", "memory sizing (JVM, node, build tools)"),
    ("file_read", "allow", "/proc/stat", "CPU counts and load (os.cpu_count fallbacks, ps)"),
    ("file_read", "allow", "/sys/devices/system/cpu/", "online CPU count (nproc, libuv)"),
    (
        "file_read",
        "allow",
        "/sys/fs/cgroup/",
        "resource limits: node, the JVM, Go and Python size heaps and pools from cgroup files",
    ),
    (
        "file_read",
        "allow",
        "/sys/kernel/mm/transparent_hugepage/",
        "huge page settings read by allocators (V8, jemalloc, the JVM)",
    ),
    # --- read: the secrets inside /etc that the grant above would otherwise expose
    ("file_read", "deny", "/etc/shadow", "password hashes"),
    ("file_read", "deny", "/etc/shadow-", "backup of the password hashes"),
    ("file_read", "deny", "/etc/gshadow", "group password hashes"),
    ("file_read", "deny", "/etc/gshadow-", "backup of the group password hashes"),
    ("file_read", "deny", "/etc/security/opasswd", "old password hashes"),
    ("file_read", "deny", "/etc/ssh/ssh_host_*_key", "the host's SSH private keys"),
    (
        "file_read",
        "deny",
        "/etc/sudoers",
        "privilege configuration is none of the agent's business",
    ),
    (
        "file_read",
        "deny",
        "/etc/sudoers.d/",
        "privilege configuration is none of the agent's business",
    ),
    # --- write: devices that every program may write without touching data
    ("file_write", "allow", "/dev/null", "every shell redirects to it"),
    ("file_write", "allow", "/dev/tty", "interactive agents write to the controlling terminal"),
    ("file_write", "allow", "/dev/pts/", "the terminal of an interactive session"),
    ("file_write", "allow", "/dev/ptmx", "opening a pseudo-terminal"),
)

# Unix sockets that programs probe on their own, on every run, whether or not the
# service exists (glibc's NSS asks nscd before reading /etc/passwd, /etc/hosts).  When
# the policy refuses such a connect by its default (no rule names the socket), the
# supervisor answers as a host without the service answers (ENOENT if the socket file is
# absent, ECONNREFUSED if it exists) with no denial line and no trail entry.  The connect
# never happens: a real nscd would resolve names outside the sandbox's DNS view.  A rule
# that names the socket decides it as usual (an explicit deny is reported).
QUIET_UNIX_SOCKETS: tuple[tuple[str, str], ...] = (
    ("/var/run/nscd/socket", "glibc's nscd probe (passwd, group, hosts lookups)"),
    ("/run/nscd/socket", "glibc's nscd probe where /var/run is not a link to /run"),
)

_BASELINE_SOURCE = SourceRef(file="<system baseline>", line=0, column=0)


def baseline_rules() -> list[Rule]:
    """The `system` profile's rules (origin "baseline"), numbered per action; the read
    allows of the program trees carry `execute` (exec: true)."""
    rules = entry_rules(
        ((a, e, p, w, True) for a, e, p, w in SYSTEM_BASELINE),
        origin="baseline",
        source=_BASELINE_SOURCE,
        home="/",
        workspace="/",
    )
    trees = {t + "/" for t in EXECUTABLE_TREES}
    return [
        replace(r, execute=True)
        if r.action == "file_read" and r.effect == "allow" and r.pattern in trees
        else r
        for r in rules
    ]


def baseline_reason(rule: Rule) -> str:
    """Why a baseline rule exists (for `plan` and `explain`)."""
    for action, effect, pattern, why in SYSTEM_BASELINE:
        if (action, effect, pattern) == (rule.action, rule.effect, rule.pattern):
            return why
    return ""
