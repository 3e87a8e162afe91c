"""The carve-out walk: one walk per tree for all deny rules, same matches as one walk per
rule, and nothing cached between plans (a secret created after one plan is masked by the
next)."""

from __future__ import annotations

import os

from launch.lg_helpers import world_policy

from sandbox.host.probe import probe_host
from sandbox.plan import build_plan
from sandbox.plan.carveouts import _mask_pattern, plan_carve_outs
from sandbox.plan.landlock import compile_landlock_rules, match, walk
from sandbox.policy import load_policy


def _masks(world, policy):
    plan = build_plan(policy, probe_host(), simulate=False, environ={})
    return {m.path: m.kind for m in plan.carve_outs.masks}


def test_new_secret_between_plans_is_masked(world):
    policy = load_policy(world_policy(world), cwd=world.workspace, home=world.home)
    first = _masks(world, policy)
    assert str(world.dotenv) in first and str(world.nested_dotenv) in first
    late = world.workspace / "pkg" / "later" / ".env"
    late.parent.mkdir()
    late.write_bytes(b"LATE=" + world.secret + b"\n")
    again = load_policy(world_policy(world), cwd=world.workspace, home=world.home)
    assert str(late) in _masks(world, again)


def _per_rule_reference(policy, ll):
    """Matches as the planner found them before the shared walk: one walk per rule and root."""
    from sandbox.plan.carveouts import _grants_for, _scan_roots

    out = {}
    for action in ("file_read", "file_write"):
        grants = _grants_for(action, ll)
        pg = [g for g in grants if any(not r.startswith("baseline") for r in g.reasons)]
        for rule in policy.block(action).rules:
            if rule.effect != "deny" or rule.path is None:
                continue
            pp = _mask_pattern(rule)  # the hook globs mask their directory
            found = []
            for root in _scan_roots(pp.anchored, pp.base, grants, pg, policy):
                if (
                    pp.anchored
                    and pp.base is not None
                    and pp.glob == pp.base
                    and os.path.lexists(root)
                    and root == pp.base
                ):
                    found.append(root)
                    continue
                if match(pp, root) and os.path.lexists(root):
                    found.append(root)
                    continue
                prune = []
                for path, is_dir in walk(root):
                    if any(path == p or path.startswith(p + "/") for p in prune):
                        continue
                    if match(pp, path):
                        found.append(path)
                        if is_dir:
                            prune.append(path)
            out[(action, rule.ref())] = len(found)
    return out


def test_shared_walk_finds_what_per_rule_walks_find(world):
    ws = world.workspace
    for d in ("a/.git/hooks", "b/c/.git/hooks/deep", "secrets/x", "node_modules/m/.env.d"):
        (ws / d).mkdir(parents=True)
    (ws / "a/.git/config").write_text("[core]\n")
    (ws / "secrets/x/k.pem").write_text("k")
    (ws / "secrets/x/id_rsa.pub").write_text("k")
    (ws / ".env.local").write_text("k")
    (ws / "node_modules/m/.env.d/.env").write_text("k")
    extra = (
        '      - { path: "**/*.pem", effect: deny }\n'
        '      - { path: "**/id_rsa*", effect: deny }\n'
        '      - { path: "**/.env.*", effect: deny }\n'
        '      - { path: "./secrets/*/", effect: deny }\n'
        '      - { path: "node_modules/**", effect: deny }\n'
    )
    policy = load_policy(world_policy(world, extra_read=extra), cwd=ws, home=world.home)
    ll = compile_landlock_rules(policy, 7, pid_ns=True)
    co = plan_carve_outs(policy, ll, mount_ns=True, open_check=False, is_root=True)
    got = {(c.action, c.rule): c.matches for c in co.coverage}
    assert got == _per_rule_reference(policy, ll)
    masked = {m.path for m in co.masks}
    assert str(ws / "a/.git/hooks") in masked and str(ws / "b/c/.git/hooks") in masked
    assert str(ws / "a/.git/config") in masked
    assert str(ws / "node_modules") in masked  # the directory, its contents pruned
    assert not co.truncated


def test_a_symlink_named_like_a_secret_is_judged_on_its_target(world):
    """`/usr/lib/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt` under a `**/*.pem`
    deny: a mask is a bind mount and follows the link, so masking the link hid the CA
    bundle itself from every TLS client (aider, Claude Code under make e2e).  The target
    decides: a link to an allowed file is not masked; a link to a denied file is (twin),
    and so is a real file with the secret's name."""
    certs = world.workspace / "certs"
    certs.mkdir()
    bundle = certs / "bundle.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    (certs / "cert.pem").symlink_to(bundle)
    (certs / "leak.pem").symlink_to(world.dotenv)
    (certs / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    extra = '      - { path: "**/*.pem", effect: deny }\n'
    policy = load_policy(
        world_policy(world, extra_read=extra), cwd=world.workspace, home=world.home
    )
    masks = _masks(world, policy)
    assert str(certs / "cert.pem") not in masks  # the bundle behind it stays readable
    assert str(certs / "leak.pem") in masks  # its target is the denied .env
    assert str(certs / "server.pem") in masks
    assert str(world.dotenv) in masks
