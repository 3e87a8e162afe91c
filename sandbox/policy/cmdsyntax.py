"""The command-line syntax the exec judge reads as data (csrc/judge_exec.c has no program
names in it): which programs are wrappers and how their options read, which are shells,
the shell keywords, how deep `sh -c` strings nest.  `sandbox.policy.compiled` lays these
out as the `struct lg_syntax` of every policy's tables."""

from __future__ import annotations

from sandbox.record import Record

__all__ = [
    "COMPOUND",
    "KEYWORDS",
    "SHELLS",
    "SHELL_ARG_OPTS",
    "SHELL_DEPTH",
    "WRAPPERS",
    "Wrapper",
]


class Wrapper(Record):
    """A program that runs the command named among its arguments."""

    name: str  # glob over the basename
    arg_opts: tuple[str, ...] = ()  # options whose value is the next word
    stop_opts: tuple[str, ...] = ()  # globs: options that hide the command (not unwrapped)
    options: bool = True  # False: the next word is the command (busybox APPLET)
    assignments: bool = False  # NAME=VALUE words may precede the command
    operands: int = 0  # words that precede the command (timeout DURATION)


_LOADER_OPTS = (
    "--library-path",
    "--preload",
    "--argv0",
    "--audit",
    "--inhibit-rpath",
    "--glibc-hwcaps-prepend",
    "--glibc-hwcaps-mask",
)
WRAPPERS: tuple[Wrapper, ...] = (
    Wrapper(
        "env",
        arg_opts=("-u", "--unset", "-C", "--chdir"),
        # -S STRING splits a string into a command: judged as written, so only an
        # explicit allow of that form lets it run (also -iS..., --split-string=...)
        stop_opts=("-S*", "-[!-]*S*", "--split-string*"),
        assignments=True,
    ),
    Wrapper("nice", arg_opts=("-n", "--adjustment")),
    Wrapper("timeout", arg_opts=("-s", "--signal", "-k", "--kill-after"), operands=1),
    Wrapper("stdbuf", arg_opts=("-i", "-o", "-e", "--input", "--output", "--error")),
    Wrapper(
        "xargs",
        arg_opts=(
            "-a",
            "--arg-file",
            "-d",
            "--delimiter",
            "-E",
            "-I",
            "-L",
            "--max-lines",
            "-n",
            "--max-args",
            "-P",
            "--max-procs",
            "-s",
            "--max-chars",
            "--process-slot-var",
        ),
    ),
    Wrapper("nohup"),
    Wrapper("setsid"),
    Wrapper("busybox", options=False),
    # the ELF loader run directly: ld-linux-x86-64.so.2, ld-musl-x86_64.so.1, ld.so
    Wrapper("ld-*.so*", arg_opts=_LOADER_OPTS),
    Wrapper("ld.so", arg_opts=_LOADER_OPTS),
)
# Shells whose `-c STRING` is judged command by command (busybox sh: through the wrapper).
SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "fish")
SHELL_ARG_OPTS = ("-o", "+o", "-O", "+O")
# Skipped at the start of a simple command; a segment starting with a COMPOUND word
# (a loop or case body) is not judged by name: the programs it starts meet their own check.
KEYWORDS = (
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "!",
    "{",
    "}",
    "time",
    "exec",
    "command",
    "builtin",
    "nohup",
)
COMPOUND = ("for", "case", "select", "function")
SHELL_DEPTH = 4  # nested `sh -c` strings judged (csrc: at most LG_DEPTH_MAX)
