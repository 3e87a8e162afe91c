#!/bin/bash
# PID 1 inside a vm-tests VM (started by init.sh): the host's root filesystem read-only under a
# tmpfs overlay, the booted kernel's modules at /lib/modules/$(uname -r), the host's output
# directory at /vm-out.  Sets up what a booted Debian would (proc, sys, cgroup2, tmpfs /tmp,
# loopback up), records `doctor --json` and `plan --json`, runs the one pytest invocation that
# /vm-out/config.env names, writes its exit status to /vm-out/status and powers off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
poweroff_now() {
    sync
    echo o > /proc/sysrq-trigger
    sleep 30
}
trap poweroff_now EXIT
fail() { echo "vm-guest: $*" | tee -a /vm-out/guest.log; exit 1; }

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
# /var/tmp stays on the root file system (the overlay), as on a booted Debian: a hard link
# of /usr/bin/curl made there is on curl's own file system (test_exec_object.py).
for d in /tmp /run; do mount -t tmpfs -o mode=1777 tmpfs "$d" || fail "mount $d"; done
mkdir -p /run/netns /run/lock
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# A booted Debian has /dev/net/tun before tun.ko loads (systemd's static nodes, mode 0666 from
# static-nodes-permissions.conf); devtmpfs alone creates it only once the module is in.
mkdir -p /dev/net
[ -e /dev/net/tun ] || mknod -m 0666 /dev/net/tun c 10 200 || fail "mknod /dev/net/tun"
# the kernel's module loader finds /lib/modules/$(uname -r) (nf_tables, tun, veth on demand)
echo /sbin/modprobe > /proc/sys/kernel/modprobe
hostname landgate-vm
ip link set lo up || fail "ip link set lo up"
# A machine has a network: QEMU's user network (restrict=on: nothing leaves the host) at its
# fixed addresses, so the host has a default route for pasta to copy (the unprivileged rung).
modprobe virtio_net || fail "modprobe virtio_net"
nic=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
[ -n "$nic" ] || fail "no network interface"
ip addr add 10.0.2.15/24 dev "$nic" && ip link set "$nic" up && ip route add default via 10.0.2.2 \
    || fail "configure $nic"

# shellcheck source=/dev/null
. /vm-out/config.env || fail "read /vm-out/config.env"
cd "$TREE" || fail "cd $TREE"
export LANDGATE_REQUIRE_KERNEL=1 LANDGATE_TEST_TIMEOUT_SCALE PYTHONDONTWRITEBYTECODE=1
export PYTEST_ADDOPTS="--basetemp=/tmp/pytest -p no:cacheprovider -o timeout=$PYTEST_TIMEOUT"
{
    echo "kernel: $(uname -r)"
    echo "landlock abi: $("$TREE/.venv/bin/python" -c 'from sandbox import _probe; print(_probe.lib.lg_probe_landlock_abi())')"
} >> /vm-out/guest.log 2>&1
"$TREE/.venv/bin/landgate" doctor --json > /vm-out/doctor.json 2>> /vm-out/guest.log
"$TREE/.venv/bin/landgate" doctor > /vm-out/doctor.txt 2>&1
"$TREE/.venv/bin/landgate" plan --json $PLAN_ARGS > /vm-out/plan.json 2>> /vm-out/guest.log
start=$(date +%s)
# shellcheck disable=SC2086  # TESTS is a word list on purpose
"$TREE/.venv/bin/python" -m pytest -q -rs --junitxml=/vm-out/junit.xml $TESTS > /vm-out/pytest.log 2>&1
rc=$?
echo "pytest: exit $rc in $(( $(date +%s) - start )) s" >> /vm-out/guest.log
echo "$rc" > /vm-out/status
