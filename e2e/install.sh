#!/usr/bin/env bash
# make e2e, step 1: install the real agent CLIs OUTSIDE the sandbox, cached in e2e/.cache
# (ignored by git) so a second run installs nothing.  Pinned versions: a new release is a
# deliberate bump here, not a surprise in CI.
#   Claude Code  @anthropic-ai/claude-code  (npm; a native binary per platform)
#   Codex        @openai/codex              (npm; a native binary, a node launcher >= 16)
#   aider        aider-chat                 (PyPI, in its own venv on Debian's python3)
# node/npm: the machine's if present, else Debian's (apt: nodejs npm, node 18 on Debian 12:
# enough, since both CLIs ship native binaries; Claude Code's package says node >= 22 for
# its JavaScript fallback, which the native binary does not use: npm only warns).
set -euo pipefail
cd "$(dirname "$0")"
CACHE=.cache
CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION:-2.1.332}
CODEX_VERSION=${CODEX_VERSION:-0.171.0}
AIDER_VERSION=${AIDER_VERSION:-0.86.2}
mkdir -p "$CACHE"
say() { printf 'e2e: %s\n' "$*"; }

if ! command -v npm >/dev/null 2>&1; then
  say "installing Debian's nodejs and npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
say "node $(node --version), npm $(npm --version)"

have_npm() {  # package version: installed at exactly that version?
  local f="$CACHE/npm/lib/node_modules/$1/package.json"
  [ -f "$f" ] && node -e "process.exit(require('./$f').version === '$2' ? 0 : 1)"
}
if have_npm @anthropic-ai/claude-code "$CLAUDE_CODE_VERSION" && have_npm @openai/codex "$CODEX_VERSION"; then
  say "Claude Code $CLAUDE_CODE_VERSION and Codex $CODEX_VERSION: cached"
else
  say "npm install @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION @openai/codex@$CODEX_VERSION"
  # -g with a prefix of our own: the layout of a user's `npm install -g` (PREFIX/bin on PATH,
  # packages in PREFIX/lib/node_modules), not a project's node_modules/.bin
  npm install -g --no-audit --no-fund --loglevel=error --prefix "$CACHE/npm" \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION"
fi

if [ -x "$CACHE/aider/bin/aider" ] && "$CACHE/aider/bin/pip" show aider-chat 2>/dev/null | grep -x "Version: $AIDER_VERSION" >/dev/null; then
  say "aider $AIDER_VERSION: cached"
else
  say "pip install aider-chat==$AIDER_VERSION (a venv on /usr/bin/python3)"
  rm -rf "$CACHE/aider"
  /usr/bin/python3 -m venv "$CACHE/aider"
  "$CACHE/aider/bin/pip" install -q "aider-chat==$AIDER_VERSION" 2> >(grep -v "is ignored: it is neither" >&2)
fi
say "installed: $("$CACHE/npm/bin/claude" --version) / $("$CACHE/npm/bin/codex" --version) / $("$CACHE/aider/bin/aider" --version)"
