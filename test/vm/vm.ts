/**
 * A small Linux VM under qemu (TCG) for tests that need a real kernel: USB hot-plug through QMP,
 * qemu's emulated FTDI FT232 (usb-serial, 0403:6001) on an xhci controller, each fed by a
 * host-side unix-socket chardev. The guest reaches the host's loopback at 10.0.2.2 (qemu user
 * networking); its serial console is collected here for diagnostics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Image } from '../../scripts/vm/image.js';
import { killOnExit } from '../support/mosquitto.js';
import { freePort, waitFor } from '../support/ports.js';
import { requirePeer } from '../support/peers.js';

export interface VmOptions {
  image: Image;
  /** what the guest's init runs: the probe (scripts/vm/probe.mjs), the agent, or systemd as PID 1 */
  run: 'probe' | 'agent' | 'systemd';
  /** the agent's config file, passed on the kernel command line */
  config?: Record<string, unknown>;
  /** run the agent as this user (the image has edgevisor, as deploy/ sets it up) instead of root */
  user?: string;
  /** more ev.NAME=VALUE kernel parameters */
  params?: Record<string, string>;
  /** ids of unix-socket chardevs to create, one per serial device the test will plug */
  chardevs?: string[];
  memoryMb?: number;
  /** more kernel parameters, as they are (systemd.log_level=debug …) */
  kernelArgs?: string[];
  /** guest TCP ports reachable from the host's loopback (qemu hostfwd): see forwardedPort() */
  forward?: number[];
  /** names the console log kept in $EDGEVISOR_VM_LOGS (when set) after stop() */
  name?: string;
}

export class Vm {
  private console = '';
  private readonly events: Array<{ event: string; data?: Record<string, unknown> }> = [];
  private qmpSocket?: Socket;
  private qmpBuffer = '';
  private qmpId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly forwards = new Map<number, number>();
  readonly startedAt = Date.now();

  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    private readonly name: string,
  ) {
    // each console line stamped with the host's time since qemu started, to see where time goes
    let partial = '';
    const collect = (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      const stamp = `[+${((Date.now() - this.startedAt) / 1000).toFixed(2)}s] `;
      for (const line of lines) this.console += `${stamp}${line.replace(/\r$/, '')}\n`;
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
  }

  static async boot(options: VmOptions): Promise<Vm> {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-vm-'));
    const params: Record<string, string> = { run: options.run, ...options.params };
    if (options.user) params.user = options.user;
    if (options.config) params.config = Buffer.from(JSON.stringify(options.config)).toString('base64');
    const append = ['console=ttyS0', 'panic=-1', 'loglevel=4', ...(options.kernelArgs ?? []), ...Object.entries(params).map(([k, v]) => `ev.${k}=${v}`)].join(
      ' ',
    );
    const forwards = new Map<number, number>();
    for (const guestPort of options.forward ?? []) forwards.set(guestPort, await freePort());
    const hostfwd = [...forwards].map(([guestPort, hostPort]) => `,hostfwd=tcp:127.0.0.1:${hostPort}-:${guestPort}`).join('');
    if (append.length > 2000) throw new Error(`the kernel command line would be cut at 2048 bytes (${append.length}): use a smaller config`);
    const args = [
      // TCG unless told otherwise: where /dev/kvm exists it may still not work (it hangs here)
      ...['-accel', process.env.EDGEVISOR_VM_ACCEL ?? 'tcg', '-M', 'pc', '-cpu', 'max', '-smp', '1', '-m', String(options.memoryMb ?? 1024)],
      ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
      ...['-kernel', options.image.kernel, '-initrd', options.image.initrd, '-append', append],
      ...['-serial', 'stdio'],
      ...['-netdev', `user,id=net0${hostfwd}`, '-device', 'e1000,netdev=net0'],
      ...['-device', 'qemu-xhci,id=xhci'],
      ...['-qmp', `unix:${join(dir, 'qmp.sock')},server=on,wait=off`],
    ];
    for (const id of options.chardevs ?? []) args.push('-chardev', `socket,id=${id},path=${join(dir, `${id}.sock`)},server=on,wait=off`);
    const child = spawn(requirePeer('qemu-system-x86_64'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(child);
    const vm = new Vm(child, dir, options.name ?? options.run);
    for (const [guestPort, hostPort] of forwards) vm.forwards.set(guestPort, hostPort);
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code) => reject(new Error(`qemu exited (${code}):\n${vm.consoleTail()}`)));
      child.once('error', (error) =>
        reject(new Error(`qemu-system-x86_64 did not start (${error.message}): apt-get install qemu-system-x86; .ci/run installs it`)),
      );
    });
    exited.catch(() => {});
    vm.qmpSocket = await Promise.race([waitFor(() => connectUnix(join(dir, 'qmp.sock')), 'the QMP socket', 20_000), exited]);
    vm.qmpSocket.on('data', (chunk) => vm.onQmp(chunk));
    await vm.qmp('qmp_capabilities');
    return vm;
  }

  /** The host loopback port that reaches a guest port named in `forward`. */
  forwardedPort(guestPort: number): number {
    const port = this.forwards.get(guestPort);
    if (port === undefined) throw new Error(`guest port ${guestPort} is not forwarded (VmOptions.forward)`);
    return port;
  }

  /** Everything the guest wrote to its serial console so far. */
  get consoleText(): string {
    return this.console;
  }

  consoleTail(lines = 60): string {
    return this.console.split('\n').slice(-lines).join('\n');
  }

  /** Runs a QMP command; rejects with qemu's error. */
  qmp(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    const id = ++this.qmpId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.qmpSocket!.write(`${JSON.stringify({ execute, arguments: args, id })}\n`);
    });
  }

  /** Connects to a chardev's socket as its far end: what is written here comes out of the device. */
  async chardev(id: string): Promise<Socket> {
    return waitFor(() => connectUnix(join(this.dir, `${id}.sock`)), `chardev ${id}`);
  }

  /**
   * Hot-plugs an emulated FTDI FT232 (0403:6001) fed by the chardev, into a given root port of
   * the xhci controller (left to itself, qemu may pick another port on a replug).
   */
  plugFtdi(id: string, chardev: string, port = '1'): Promise<unknown> {
    return this.plugUsb('usb-serial', id, port, { chardev });
  }

  /** Hot-plugs any of qemu's USB devices (usb-kbd, usb-tablet …) into a root port of the xhci controller. */
  plugUsb(driver: string, id: string, port: string, properties: Record<string, unknown> = {}): Promise<unknown> {
    return this.qmp('device_add', { driver, id, bus: 'xhci.0', port, ...properties });
  }

  /** Unplugs a device and waits until qemu says it is gone. */
  async unplug(id: string): Promise<void> {
    const seen = this.events.length;
    await this.qmp('device_del', { id });
    await waitFor(() => this.events.slice(seen).some((e) => e.event === 'DEVICE_DELETED' && e.data?.device === id), `DEVICE_DELETED ${id}`);
  }

  /**
   * Kills qemu. The serial console goes to $EDGEVISOR_VM_LOGS when set, and, when `failed`,
   * to test-artifacts/vm/<name>.console.log otherwise (git-ignored), whose path is printed.
   */
  async stop(options: { failed?: boolean } = {}): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGKILL');
      await exited;
    }
    this.qmpSocket?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
    const logs = process.env.EDGEVISOR_VM_LOGS ?? (options.failed ? join(import.meta.dirname, '../../test-artifacts/vm') : undefined);
    if (logs) {
      mkdirSync(logs, { recursive: true });
      const file = join(logs, `${this.name}.console.log`);
      writeFileSync(file, this.console);
      if (options.failed) console.log(`vm ${this.name}: serial console kept in ${file}`);
    }
  }

  private onQmp(chunk: Buffer): void {
    this.qmpBuffer += chunk.toString();
    let newline: number;
    while ((newline = this.qmpBuffer.indexOf('\n')) >= 0) {
      const line = this.qmpBuffer.slice(0, newline).trim();
      this.qmpBuffer = this.qmpBuffer.slice(newline + 1);
      if (!line) continue;
      const message = JSON.parse(line);
      if (message.event) this.events.push(message);
      const waiter = message.id !== undefined ? this.pending.get(message.id) : undefined;
      if (!waiter) continue;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`QMP: ${message.error.class}: ${message.error.desc}`));
      else waiter.resolve(message.return);
    }
  }
}

function connectUnix(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', () => resolve(undefined));
  });
}
