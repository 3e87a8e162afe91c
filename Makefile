# landgate: the two commands a fresh machine needs are `make demo` and `make test`.
# Both install first (idempotent: apt-get only what is missing, a venv, pip -e).

SHELL := /bin/bash
PY ?= /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the project needs at run and test time (DESIGN §7):
#   libcap-dev   python-prctl's build      nftables, libnftables1  egress rulesets
#   python3-*    the interpreter we build against (readable by unprivileged users,
#                unlike a pyenv under /root, so tests can run landgate as `nobody`)
#   passt        unprivileged network namespace connectivity     util-linux  setpriv/runuser
#   iproute2     ip netns for the tests' fake internet            chromium  the report and
#                                                                dashboard browser tests
#   ca-certificates  the symlinked /etc/ssl/certs/*.pem the simulation/enforcement contract reads
DEB_PKGS := gcc make libcap-dev nftables libnftables1 python3 python3-venv python3-dev \
            iproute2 passt util-linux procps chromium curl ca-certificates
BENCH_DEB_PKGS := bubblewrap firejail socat ripgrep hyperfine
# vm-tests/ (make vm-test): boot Debian's own kernels (vm-tests/kernels) under QEMU with the
# host's root filesystem shared read-only; busybox and cpio build the small initramfs, kmod's
# depmod indexes the unpacked modules, zstd/xz-utils unpack them.
VM_DEB_PKGS := qemu-system-x86 busybox-static cpio kmod zstd xz-utils
# Every Python package, pinned (runtime, test, dev, bench, build tools): installs are
# reproducible.  Refresh with `make lock` (resolves from PyPI), then commit the file.
LOCK := requirements.lock
# --no-build-isolation: landgate's C extension is built with the venv's pinned
# setuptools/wheel/cffi, not with whatever an isolated build environment would fetch.
PIP_LOCKED := $(VPY) -m pip install -q -c $(LOCK)

.PHONY: install test e2e vm-test demo bench build check-c lint lock clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py csrc/*.c csrc/*.h csrc/build.py $(LOCK)
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# node + npm for the workflow tests (tests/session/test_workflows.py): Debian's
	@# packages, unless a node with npm is already installed (e.g. from NodeSource,
	@# whose nodejs conflicts with Debian's npm package)
	@command -v npm >/dev/null 2>&1 || { echo "installing Debian packages: nodejs npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(PIP_LOCKED) --upgrade pip setuptools wheel cffi
	rm -f sandbox/_*.so sandbox/_lginit
	$(PIP_LOCKED) --no-build-isolation -e '.[test,dev]'
	@touch $(STAMP)

build: install
	$(VPY) csrc/build.py

check-c:
	@for f in csrc/*.c; do gcc -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsyntax-only -Icsrc $$f || exit 1; done
	@echo "csrc: clean under -Wall -Wextra -Werror"

test: install check-c
	$(VPY) -m pytest -q

# The real agents under their presets (e2e/): Claude Code and Codex from the npm registry,
# aider from PyPI, installed outside the sandbox into e2e/.cache (kept between runs; node/npm
# from Debian's apt when the machine has none), then e2e/test_agents.py: each CLI starts with
# 0 denials in the trail, and a run that needs the API fails as it fails bare.
e2e: install
	@bash e2e/install.sh
	@echo "e2e: running the agents bare and under landgate"
	$(VPY) -m pytest -q -s -p no:cacheprovider e2e/test_agents.py

# The kernel-facing tests inside a VM per kernel in vm-tests/kernels (see vm-tests/README.md).
vm-test: install
	@missing=$$(for p in $(VM_DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(VPY) vm-tests/run.py

demo: install
	@bash demo/run.sh

bench: install
	@missing=$$(for p in $(BENCH_DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(PIP_LOCKED) --no-build-isolation -e '.[bench]'
	$(VPY) bench/run.py

lint: install
	$(VPY) -m ruff check sandbox tests bench demo .ci vm-tests e2e
	$(VPY) -m ruff format --check sandbox tests bench demo .ci vm-tests e2e
	$(VPY) -m mypy sandbox

# Re-resolve every Python dependency from PyPI and rewrite requirements.lock.
lock:
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) .ci/lock.py

clean:
	rm -rf build $(VENV) sandbox/*.so *.egg-info
