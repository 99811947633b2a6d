#!/usr/bin/env bash
# Builds a Debian guest image for the QEMU provider, from Debian packages only:
#   debootstrap (minbase) → kernel + initramfs installed in a chroot → cloud-init set to the
#   NoCloud datasource with no package updates → mkfs.ext4 -d → qcow2.
# Output: $SOLSTICE_TOOLS_DIR/images/<name>-<recipe hash>/{base.qcow2,vmlinuz,initrd,image.json},
# plus the symlink images/<name> → that folder. A folder that exists is reused: the hash
# covers this script, so changing the recipe builds a new image next to the old one.
#
# Usage: infra/images/build.sh [--print-path]   (needs root, debootstrap, qemu-img, mkfs.ext4)
#   --print-path  print the image folder (building it first if missing) and nothing else on stdout
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
images_dir="${SOLSTICE_TOOLS_DIR:-$root/.tools}/images"

name="${SOLSTICE_IMAGE_NAME:-debian-12}"
suite=bookworm
mirror="${SOLSTICE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# python3-cffi-backend: debootstrap does not resolve that virtual package for python3-cryptography.
# dbus: systemd-logind needs it, and logind turns QMP's ACPI power-down into a clean poweroff.
packages=python3-cffi-backend,systemd-sysv,udev,dbus,cloud-init,git,nodejs,ca-certificates,iproute2,curl,ifupdown,isc-dhcp-client
disk_size=3G

say() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

recipe_hash="$( { cat "${BASH_SOURCE[0]}"; echo "$suite $mirror"; } | sha256sum | cut -c1-12)"
out="$images_dir/$name-$recipe_hash"

if [[ -f "$out/base.qcow2" && -f "$out/vmlinuz" && -f "$out/initrd" ]]; then
  say "$name: cached at $out"
  ln -sfn "$(basename "$out")" "$images_dir/$name"
  [[ "${1:-}" == --print-path ]] && echo "$out"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "building an image needs root (debootstrap, chroot); run as root or put a built image at $out"
for tool in debootstrap qemu-img mkfs.ext4 chroot flock; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install debootstrap qemu-utils e2fsprogs)"
done

mkdir -p "$images_dir"
# One build at a time; a second caller waits and then finds the image.
exec 9>"$images_dir/.$name.lock"
flock 9
if [[ -f "$out/base.qcow2" ]]; then
  say "$name: built meanwhile by another process: $out"
  [[ "${1:-}" == --print-path ]] && echo "$out"
  exit 0
fi

work="$images_dir/.build-$name-$recipe_hash"
rm -rf "$work"
mkdir -p "$work"
rootfs="$work/rootfs"
cleanup() {
  if mountpoint -q "$rootfs/proc"; then umount "$rootfs/proc" || true; fi
  # Never delete through a mount point that is still there.
  if grep -q " $rootfs/" /proc/mounts; then say "left $work in place: something is still mounted in it"; else rm -rf "$work"; fi
}
trap cleanup EXIT
started=$SECONDS
step() { say "[$((SECONDS - started))s] $*"; }

step "1/5 debootstrap $suite (minbase + cloud-init, git, nodejs) from $mirror"
# Progress: one line per 50 packages unpacked or configured.
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" 2>&1 |
  awk '/^I: (Retrieving|Validating|Unpacking|Configuring)/ { n[$2]++; if (n[$2] % 50 == 0) printf "[image]   ... %s %d\n", $2, n[$2] > "/dev/stderr"; next } /^(W|E):/ { print > "/dev/stderr" }'
[[ -x "$rootfs/usr/bin/node" ]] || die "debootstrap did not install nodejs (see above)"

step "2/5 kernel and initramfs (linux-image-cloud-amd64) in a chroot"
mount -t proc proc "$rootfs/proc"
cat >"$rootfs/usr/sbin/policy-rc.d" <<'POLICY'
#!/bin/sh
# No service may start inside the build chroot.
exit 101
POLICY
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  linux-image-cloud-amd64 initramfs-tools >"$work/kernel.log" 2>&1 || { tail -20 "$work/kernel.log" >&2; die "installing the kernel failed"; }
rm -f "$rootfs/usr/sbin/policy-rc.d"
umount "$rootfs/proc"

step "3/5 configure: cloud-init NoCloud only, no package updates, serial console"
cat >"$rootfs/etc/cloud/cloud.cfg.d/90-solstice.cfg" <<'CFG'
# Solstice CI guest: the seed is a NoCloud ISO (label cidata); never probe cloud metadata services.
datasource_list: [ NoCloud ]
# Jobs run on exactly the image that was built: no package index updates or upgrades at boot.
package_update: false
package_upgrade: false
package_reboot_if_required: false
# Only the modules a job VM needs; the rest (ssh keys, locales, apt, users) cost boot time
# under emulation and do nothing useful here.
cloud_init_modules: [seed_random, bootcmd, write-files, set_hostname, update_hostname, update_etc_hosts]
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts-per-once, scripts-per-boot, scripts-per-instance, scripts-user, final-message]
CFG
echo 'solstice-guest' >"$rootfs/etc/hostname"
echo '/dev/vda / ext4 rw,noatime 0 1' >"$rootfs/etc/fstab"
# A fresh machine id per VM (systemd makes one at boot when the file is empty).
: >"$rootfs/etc/machine-id"
# Timers that would only compete with the job for the CPU.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
  chroot "$rootfs" systemctl disable "$unit" >/dev/null 2>&1 || true
done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
mkdir -p "$work/out"
cp "$(ls "$rootfs"/boot/vmlinuz-* | sort | tail -1)" "$work/out/vmlinuz"
cp "$(ls "$rootfs"/boot/initrd.img-* | sort | tail -1)" "$work/out/initrd"
kernel_version="$(basename "$(ls "$rootfs"/boot/vmlinuz-* | sort | tail -1)" | sed 's/^vmlinuz-//')"
node_version="$(chroot "$rootfs" node --version)"

step "4/5 root file system: mkfs.ext4 -d ($disk_size, sparse)"
mkfs.ext4 -q -F -L solstice-root -d "$rootfs" "$work/disk.raw" "$disk_size" 2>&1 | grep -v "^Creating regular file" >&2 || true
[[ -s "$work/disk.raw" ]] || die "mkfs.ext4 failed"

step "5/5 qcow2"
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/out/base.qcow2"
rm -f "$work/disk.raw"
cat >"$work/out/image.json" <<JSON
{"name": "$name", "recipe": "$recipe_hash", "suite": "$suite", "kernel": "$kernel_version", "node": "$node_version", "append": "root=/dev/vda console=ttyS0 rw", "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
JSON
# Read-only: many VMs share this base through their own overlays.
chmod 0444 "$work/out/base.qcow2"
mv "$work/out" "$out"
ln -sfn "$(basename "$out")" "$images_dir/$name"
step "done: $out ($(du -sh "$out" | cut -f1) on disk)"
[[ "${1:-}" == --print-path ]] && echo "$out"
exit 0
