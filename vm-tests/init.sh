#!/bin/busybox sh
# /init of the small initramfs vm-tests/run.py builds: load the kernel's own 9p, virtio and
# overlay modules, mount the host's root (9p, read-only) under a tmpfs overlay, mount the
# kernel's unpacked modules and the output share, and hand over to vm-tests/guest.sh.
# Any failure powers the VM off with a line on the console; the host then finds no status file.
/bin/busybox --install -s /bin
export PATH=/bin
die() { echo "vm-init: $*"; echo o > /proc/sysrq-trigger; sleep 5; }
mkdir -p /proc /sys /dev /lower /upper /newroot
mount -t proc proc /proc || die "mount /proc"
mount -t sysfs sysfs /sys || die "mount /sys"
mount -t devtmpfs devtmpfs /dev || die "mount /dev"
for m in $(cat /modules/order); do
    insmod "/modules/$m" || die "insmod $m"
done
# msize: 512 KiB messages (the 6.1 client's virtio maximum); cache=loose: the tree does not
# change under a run, and every uncached lookup is a round trip through QEMU under TCG.
P9="trans=virtio,version=9p2000.L,msize=524288"
mount -t 9p -o "$P9,ro,cache=loose" hostroot /lower || die "mount the host's root"
mount -t tmpfs -o mode=0755 tmpfs /upper || die "mount the overlay's tmpfs"
mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot \
    || die "mount the overlay"
KVER=$(cat /kver)
mkdir -p "/newroot/lib/modules/$KVER" /newroot/vm-out
mount -t 9p -o "$P9,ro" modules "/newroot/lib/modules/$KVER" || die "mount the modules"
mount -t 9p -o "$P9" out /newroot/vm-out || die "mount the output share"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /bin/bash "$(cat /guest)"
