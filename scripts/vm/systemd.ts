/**
 * The systemd layer of the VM image (scripts/vm/image.ts --systemd): Debian's systemd as PID 1
 * (the init switches root into a tmpfs and execs it), journald forwarding every log line to the
 * serial console, useradd, usermod and install(1) for scripts/install.sh, and vmctl, the test's hand inside.
 * Only the units a minimal multi-user boot needs are taken from the packages (no .wants links
 * of theirs): journald, udevd (the agent's udev rule), no getty, no logind, so the boot stays
 * short under TCG.
 */
import { join } from 'node:path';
import type { Entry } from './cpio.js';

/** The Debian packages this layer is made of (their libraries come through ldd); udev's units come from the base's udev. */
export const SYSTEMD_PACKAGES = ['systemd', 'libsystemd-shared', 'passwd'];

const PROGRAMS: Array<[string, string, string]> = [
  // package, path in it, path in the guest
  ['systemd', 'lib/systemd/systemd', '/lib/systemd/systemd'],
  ['systemd', 'lib/systemd/systemd-journald', '/lib/systemd/systemd-journald'],
  ['systemd', 'lib/systemd/systemd-shutdown', '/lib/systemd/systemd-shutdown'],
  ['systemd', 'bin/systemctl', '/usr/bin/systemctl'],
  ['systemd', 'bin/journalctl', '/usr/bin/journalctl'],
  ['systemd', 'bin/systemd-notify', '/usr/bin/systemd-notify'],
  ['systemd', 'usr/bin/systemd-analyze', '/usr/bin/systemd-analyze'],
  ['passwd', 'usr/sbin/useradd', '/usr/sbin/useradd'],
  ['passwd', 'usr/sbin/usermod', '/usr/sbin/usermod'],
  // install.sh uses install(1), which Debian's busybox lacks: the host's coreutils one, as node is the host's
  ['host', 'usr/bin/install', '/usr/bin/install'],
  // the shell install.sh gives the agent's user
  ['host', 'usr/sbin/nologin', '/usr/sbin/nologin'],
];

const UNITS = [
  'basic.target',
  'sysinit.target',
  'multi-user.target',
  'sockets.target',
  'timers.target',
  'paths.target',
  'slices.target',
  'local-fs-pre.target',
  'local-fs.target',
  'swap.target',
  'network-pre.target',
  'network.target',
  'network-online.target',
  'shutdown.target',
  'umount.target',
  'final.target',
  'poweroff.target',
  'systemd-poweroff.service',
  'emergency.target',
  'emergency.service',
  'rescue.target',
  'rescue.service',
  'systemd-journald.service',
  'systemd-journald.socket',
  'systemd-journald-dev-log.socket',
];
/** udev's own units (the udev package): the agent's udev rule gives it the ttys it opens. */
const UDEV_UNITS = ['systemd-udevd.service', 'systemd-udevd-control.socket', 'systemd-udevd-kernel.socket', 'systemd-udev-trigger.service'];
/** What the boot starts besides multi-user.target's own: [target, unit]. */
const WANTS = [
  ['sockets.target', 'systemd-journald.socket'],
  ['sockets.target', 'systemd-journald-dev-log.socket'],
  ['sockets.target', 'systemd-udevd-control.socket'],
  ['sockets.target', 'systemd-udevd-kernel.socket'],
  ['sysinit.target', 'systemd-udevd.service'],
  ['sysinit.target', 'systemd-udev-trigger.service'],
];

/** Without the agent's user: scripts/install.sh creates it, as on a fresh box. */
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\n';
const GROUP = 'root:x:0:\ntty:x:5:\ndisk:x:6:\ndialout:x:20:\nsystemd-journal:x:101:\n';

export function systemdEntries(packages: Record<string, string>, here: string, libraries: (programs: string[]) => Entry[]): Entry[] {
  const trees: Record<string, string> = { ...packages, host: '/' };
  const entries: Entry[] = PROGRAMS.map(([pkg, from, to]) => ({ type: 'file', path: to, mode: 0o755, source: join(trees[pkg]!, from) }));
  entries.push(...libraries(PROGRAMS.map(([pkg, from]) => join(trees[pkg]!, from))));
  for (const unit of UNITS) entries.push({ type: 'file', path: `/lib/systemd/system/${unit}`, source: join(trees.systemd!, 'lib/systemd/system', unit) });
  for (const unit of UDEV_UNITS) entries.push({ type: 'file', path: `/lib/systemd/system/${unit}`, source: join(trees.udev!, 'lib/systemd/system', unit) });
  const etc = '/etc/systemd/system';
  for (const [target, unit] of WANTS) entries.push({ type: 'symlink', path: `${etc}/${target}.wants/${unit}`, target: `/lib/systemd/system/${unit}` });
  entries.push(
    { type: 'symlink', path: '/lib/systemd/systemd-udevd', target: '/usr/bin/udevadm' },
    { type: 'symlink', path: `${etc}/default.target`, target: '/lib/systemd/system/multi-user.target' },
    { type: 'file', path: `${etc}/vmctl.service`, data: VMCTL_UNIT },
    { type: 'symlink', path: `${etc}/multi-user.target.wants/vmctl.service`, target: `${etc}/vmctl.service` },
    { type: 'file', path: '/opt/vmctl.mjs', source: join(here, 'vmctl.mjs') },
    // every journal line on the serial console: the test keeps it as its log
    {
      type: 'file',
      path: '/etc/systemd/journald.conf',
      data: '[Journal]\nStorage=volatile\nForwardToConsole=yes\nMaxLevelConsole=info\nTTYPath=/dev/console\n',
    },
    { type: 'file', path: '/etc/passwd', data: PASSWD },
    { type: 'file', path: '/etc/group', data: GROUP },
    { type: 'file', path: '/etc/shadow', mode: 0o640, data: 'root:*:20000:0:99999:7:::\n' },
    { type: 'file', path: '/etc/gshadow', mode: 0o640, data: GROUP.replace(/:x:\d+:/g, ':*::') },
    { type: 'file', path: '/etc/nsswitch.conf', data: 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' },
    { type: 'file', path: '/etc/os-release', data: 'PRETTY_NAME="edgevisor test VM"\nNAME="edgevisor-vm"\nID=debian\nVERSION_ID="12"\n' },
    { type: 'file', path: '/etc/machine-id', data: 'ed9e7150ed9e7150ed9e7150ed9e7150\n' },
    { type: 'file', path: '/etc/hostname', data: 'edgevisor-vm\n' },
    { type: 'symlink', path: '/etc/mtab', target: '/proc/self/mounts' },
    { type: 'dir', path: '/var/tmp', mode: 0o1777 },
    { type: 'dir', path: '/var/log' },
    { type: 'dir', path: '/usr/local/bin' },
  );
  return entries;
}

const VMCTL_UNIT = `[Unit]
Description=the test's control channel (edgevisor VM test)
DefaultDependencies=no
After=systemd-journald.socket

[Service]
ExecStart=/usr/bin/node /opt/vmctl.mjs
Restart=always
`;
