/**
 * The host's end of scripts/vm/vmctl.mjs: shell commands run as root inside the systemd VM,
 * through the qemu port forward of guest port 7777.
 */
import { waitFor } from '../support/ports.js';
import type { Vm } from './vm.js';

export const VMCTL_PORT = 7777;

export interface Ran {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export class Guest {
  private constructor(
    private readonly vm: Vm,
    private readonly port: number,
  ) {}

  /** Waits (bounded) until the guest's vmctl answers: systemd booted as far as multi-user.target. */
  static async connect(vm: Vm, timeoutMs: number): Promise<Guest> {
    const guest = new Guest(vm, vm.forwardedPort(VMCTL_PORT));
    await waitFor(
      () =>
        guest.run('true', { timeoutMs: 5_000 }).then(
          (r) => r.code === 0 || undefined,
          () => undefined,
        ),
      'vmctl in the guest (systemd up to multi-user.target)',
      timeoutMs,
    );
    return guest;
  }

  /** Runs `sh -c command` in the guest; killed there after timeoutMs. */
  async run(command: string, options: { input?: string; timeoutMs?: number } = {}): Promise<Ran> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const response = await fetch(`http://127.0.0.1:${this.port}/`, {
      method: 'POST',
      body: JSON.stringify({ command, input: options.input, timeoutMs }),
      signal: AbortSignal.timeout(timeoutMs + 10_000),
    });
    if (!response.ok) throw new Error(`vmctl answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Ran;
  }

  /** Runs it and returns its stdout; a non-zero exit throws with both outputs. */
  async ok(command: string, options: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const ran = await this.run(command, options);
    if (ran.code !== 0) throw new Error(`in the guest, \`${command}\` exited ${ran.code ?? ran.signal}:\n${ran.stdout}${ran.stderr}`);
    return ran.stdout;
  }

  /** `systemctl show -p A -p B unit` as a record. */
  async show(unit: string, properties: string[]): Promise<Record<string, string>> {
    const out = await this.ok(`systemctl show ${properties.map((p) => `-p ${p}`).join(' ')} ${unit}`);
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
  }

  get console(): string {
    return this.vm.consoleTail(120);
  }
}
