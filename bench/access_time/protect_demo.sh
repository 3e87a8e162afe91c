set -u
cd "$1"
r() { desc=$1; shift; if "$@" >/dev/null 2>&1; then echo "$desc: ok"; else echo "$desc: refused"; fi; }
r "git init" git init -q
r "git config user.name x" git config user.name x
echo "user.name now: $(git config user.name)"
r "git config core.pager evil" git config core.pager "evil"
r "git config alias.x '!id'" git config alias.x '!id'
r "git config alias.st status" git config alias.st status
r "echo >> .git/config (direct write)" sh -c 'echo "[core] pager=evil" >> .git/config'
r "write ~/.gitconfig" sh -c 'printf "[core]\n\tpager=evil\n" > ~/.gitconfig'
r "mkdir -p ~/.config/git" mkdir -p "$HOME/.config/git"
r "write ~/.config/git/config" sh -c 'printf "[core]\n\tpager=evil\n" > ~/.config/git/config'
r "write .git/hooks/pre-commit" sh -c 'echo evil > .git/hooks/pre-commit'
r "write hookfile in workspace" sh -c 'echo evil > hookfile'
r "mv hookfile .git/hooks/pre-commit" mv hookfile .git/hooks/pre-commit
r "ln -s hookfile .git/hooks/post-checkout" ln -s "$PWD/hookfile" .git/hooks/post-checkout
r "ln -s /tmp/evilcfg ~/.gitconfig" ln -s /tmp/evilcfg "$HOME/.gitconfig"
r "mkdir -p ~/.config/systemd/user" mkdir -p "$HOME/.config/systemd/user"
r "write ~/.config/systemd/user/x.service" sh -c 'echo "[Service]" > ~/.config/systemd/user/x.service'
r "write ~/.config/autostart/x.desktop" sh -c 'mkdir -p ~/.config/autostart && echo x > ~/.config/autostart/x.desktop'
r "append to ~/.bashrc" sh -c 'echo evil >> ~/.bashrc'
r "prepare ~/.local elsewhere (with a unit) then mv it into place" sh -c 'p=$(mktemp -d) && mkdir -p $p/share/systemd/user && echo x > $p/share/systemd/user/x.service && { mv $p ~/.local || { rm -rf $p; false; }; }'
r "echo ok > notes.txt" sh -c 'echo ok > notes.txt'
r "git add -A && git commit" sh -c 'git add -A && git -c user.email=a@b commit -qm x'
r "git status" git status --short
r "rm -rf .git (removal allowed)" rm -rf .git
