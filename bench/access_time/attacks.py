"""The issue's attacks against the fanotify gate (fan_gate), each with its allowed twin.

    attacks.py [--mode mount|none]     (root; prints one JSON object)

The agent (agent.py) runs inside fan_gate's mount namespace; this driver acts on the
workspace from outside (the host's own mount) between the agent's commands.  With
--mode none the same script runs with the namespace and bind but no fanotify group:
every "denied" expectation must then fail, which shows the checks can fail.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, build


class Agent:
    def __init__(self, fan_gate, ws, mode, deny_obj):
        argv = [fan_gate, "-w", ws, "-m", mode, "-g", "*/.env", "-g", "*/.git/hooks/*"]
        argv += ["-d", deny_obj, "--", sys.executable, "-S", os.path.join(HERE, "agent.py")]
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def do(self, *cmd):
        self.p.stdin.write(json.dumps(list(cmd)) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("agent died: " + self.p.stderr.read())
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)
        return self.p.stderr.read()


def outcome(r):
    return "ok" if r["ok"] else r["errno"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="mount")
    args = ap.parse_args()
    fan_gate = build("fan_gate")
    top = tempfile.mkdtemp(prefix="i12-attacks-")
    ws, secret_dir = os.path.join(top, "ws"), os.path.join(top, "home", ".ssh")
    os.makedirs(os.path.join(ws, ".git", "hooks"))
    os.makedirs(secret_dir)
    secret = os.path.join(secret_dir, "id_rsa")
    for path, body in [
        (secret, "PRIVATE KEY"),
        (os.path.join(ws, ".env"), "SECRET=1"),
        (os.path.join(ws, "ok.txt"), "hello"),
        (os.path.join(ws, "mv-me.env.txt"), "hello"),
    ]:
        with open(path, "w") as f:
            f.write(body)
    # hard links to .env under names no rule matches, made before launch
    os.link(os.path.join(ws, ".env"), os.path.join(ws, "env-link-early"))
    os.link(os.path.join(ws, ".env"), os.path.join(ws, "env-link-late"))
    # made before launch: a hard link to the protected key inside the workspace
    os.link(secret, os.path.join(ws, "innocent.txt"))
    os.symlink(".env", os.path.join(ws, "sl-env"))
    os.symlink("ok.txt", os.path.join(ws, "sl-ok"))
    # a .env the agent will launder by renaming it before any open
    os.makedirs(os.path.join(ws, "laundry"))
    with open(os.path.join(ws, "laundry", ".env"), "w") as f:
        f.write("LAUNDERED=1")
    os.makedirs(os.path.join(ws, "linkme"))
    with open(os.path.join(ws, "linkme", ".env"), "w") as f:
        f.write("LINKED=1")

    a = Agent(fan_gate, ws, args.mode, secret)

    def W(*p):
        return os.path.join(ws, *p)

    def content(p):
        with open(p) as f:
            return f.read()

    res = {}
    res["read a hard link to .env (other name, made before launch) BEFORE .env was opened"] = (
        outcome(a.do("read", W("env-link-early")))
    )
    res["read .env (deny glob)"] = outcome(a.do("read", W(".env")))
    res["read ok.txt (twin)"] = outcome(a.do("read", W("ok.txt")))
    res["read hard link to ~/.ssh/id_rsa made before launch"] = outcome(
        a.do("read", W("innocent.txt"))
    )
    res["read symlink -> .env"] = outcome(a.do("read", W("sl-env")))
    res["read symlink -> ok.txt (twin)"] = outcome(a.do("read", W("sl-ok")))
    res["O_PATH then reopen /proc/self/fd/N of .env"] = outcome(a.do("opath_reopen", W(".env")))
    res["O_PATH then reopen of ok.txt (twin)"] = outcome(a.do("opath_reopen", W("ok.txt")))
    res["open_by_handle_at .env, mount fd = workspace mount"] = outcome(
        a.do("handle", W(".env"), ws)
    )
    res["open_by_handle_at .env, mount fd = / (unmarked mount)"] = outcome(
        a.do("handle", W(".env"), "/")
    )
    # from outside, during the session
    with open(W(".env.tmp"), "w") as f:
        f.write("SECRET=2")
    os.rename(W(".env.tmp"), W(".env"))
    res["read .env after an outside rename-replace"] = outcome(a.do("read", W(".env")))
    os.makedirs(W("late", "deep"))
    with open(W("late", "deep", ".env"), "w") as f:
        f.write("SECRET=3")
    res["read a .env created from outside after launch"] = outcome(
        a.do("read", W("late", "deep", ".env"))
    )
    with open(W("late", "deep", "ok.txt"), "w") as f:
        f.write("fine")
    res["read a file created after launch (twin)"] = outcome(
        a.do("read", W("late", "deep", "ok.txt"))
    )
    before = content(W(".env"))
    res["open .env O_WRONLY|O_TRUNC"] = outcome(a.do("write_trunc", W(".env"), "X"))
    res[".env unchanged after the refused write"] = content(W(".env")) == before
    os.makedirs(W("a"))
    res["create new a/.env"] = outcome(a.do("create", W("a", ".env"), "X"))
    res["a/.env left behind after the refused create (size)"] = (
        os.path.getsize(W("a", ".env")) if os.path.exists(W("a", ".env")) else None
    )
    # what fanotify does not see: namespace operations by the agent
    res["agent renames laundry/.env -> laundry/clean.txt (never opened)"] = outcome(
        a.do("rename", W("laundry", ".env"), W("laundry", "clean.txt"))
    )
    res["then reads laundry/clean.txt"] = outcome(a.do("read", W("laundry", "clean.txt")))
    res["agent hard-links linkme/.env -> linkme/x (never opened)"] = outcome(
        a.do("link", W("linkme", ".env"), W("linkme", "x"))
    )
    res["then reads linkme/x"] = outcome(a.do("read", W("linkme", "x")))
    res["read a hard link to .env (other name, made before launch) AFTER .env was denied"] = (
        outcome(a.do("read", W("env-link-late")))
    )
    res["agent writes ok.txt then renames it to .git/hooks/pre-commit"] = outcome(
        a.do("rename", W("ok.txt"), W(".git", "hooks", "pre-commit"))
    )
    res["chmod 755 .git/hooks/pre-commit"] = outcome(
        a.do("chmod", W(".git", "hooks", "pre-commit"), "755")
    )
    res["unlink .env (allowed: removing is not reading)"] = outcome(a.do("unlink", W(".env")))
    res["stat of a denied file works"] = outcome(a.do("stat", W("innocent.txt")))
    stderr = a.close()
    res["gate's denial lines"] = [ln for ln in stderr.splitlines() if "denied" in ln]
    shutil.rmtree(top)
    print(json.dumps({"mode": args.mode, "results": res}, indent=1))


if __name__ == "__main__":
    main()
