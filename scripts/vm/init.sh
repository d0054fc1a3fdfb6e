#!/bin/busybox sh
# PID 1 of the test VM: mounts, loads the USB and network drivers, starts systemd-udevd (the usb
# package's hotplug listens to udev's events), then runs what the kernel command line names
# (ev.run=probe|agent|shell) and powers off when it ends. With ev.run=systemd it hands over to
# systemd instead: the root moves into a tmpfs (the initramfs cannot be a real root) and
# /lib/systemd/systemd becomes PID 1.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/root
mkdir -p /proc /sys /dev /run /tmp /root /var/lib/edgevisor
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
log() { echo "ev-init: $*"; }

for module in $(cat /etc/ev-modules); do
  insmod "/lib/modules/$module" || log "insmod $module failed"
done

# qemu user networking: the host's loopback is 10.0.2.2
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || log "no network"

run=shell
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ev.run=*) run="${arg#ev.run=}" ;;
    ev.user=*) user="${arg#ev.user=}" ;;
    ev.config=*) echo "${arg#ev.config=}" | base64 -d > /etc/edgevisor.json ;;
  esac
done

if [ "$run" = systemd ]; then
  log "switching root to a tmpfs for systemd after $(cut -d' ' -f1 /proc/uptime) s"
  mkdir -p /newroot && mount -t tmpfs -o mode=0755 tmpfs /newroot
  for entry in /*; do
    case "$entry" in /proc | /sys | /dev | /run | /tmp | /newroot) ;; *) cp -a "$entry" /newroot/ ;; esac
  done
  mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/run /newroot/tmp && chmod 1777 /newroot/tmp
  umount /dev/pts /tmp /run
  for fs in /dev /proc /sys; do mount --move "$fs" "/newroot$fs"; done
  exec switch_root /newroot /lib/systemd/systemd
fi

/usr/lib/systemd/systemd-udevd --daemon || log "systemd-udevd failed"
# coldplug what peripherals need (all of it takes seconds under TCG): USB and ttys
udevadm trigger --action=add --subsystem-match=usb --subsystem-match=usb-serial --subsystem-match=tty
udevadm settle --timeout=10

log "ready after $(cut -d' ' -f1 /proc/uptime) s, running $run"

case "$run" in
  probe) node /opt/probe.mjs ;;
  agent)
    cd /opt/edgevisor
    if [ -n "$user" ]; then
      # as deploy/edgevisor.service runs it: its own user, no root; ttys only through the udev rule
      chown -R "$user:$user" /var/lib/edgevisor
      log "agent as $(id "$user")"
      su -s /bin/sh "$user" -c 'exec node dist/bundle/main.js run --config /etc/edgevisor.json'
    else
      node dist/bundle/main.js run --config /etc/edgevisor.json
    fi ;;
  *) setsid cttyhack sh ;;
esac
log "$run exited with $?"
poweroff -f
