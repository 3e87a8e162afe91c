"""Launch: fork, namespaces, Landlock, seccomp, exec; signals and the terminal.

`session.run_session(RunOptions)` is the whole `landgate run`; `spawn.spawn`
is the thin wrapper over the C child (`sandbox._launch`).
"""
