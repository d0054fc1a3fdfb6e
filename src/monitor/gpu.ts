import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

const FIELDS = ['index', 'utilization.gpu', 'memory.used', 'memory.total', 'temperature.gpu', 'power.draw'] as const;
const MIB = 1024 * 1024;
/** A child that died is started again at most this often. */
const RESTART_AFTER_MS = 60_000;
/** GPUs read at most (keys stay bounded). */
const MAX_GPUS = 16;

/** nvidia-smi on PATH, found without running anything; undefined when absent. */
export async function findNvidiaSmi(path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'nvidia-smi');
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

/** One CSV line of the query above as keys, e.g. gpu-0-utilization-percent; "[N/A]" fields left out. */
export function parseGpuLine(line: string): Record<string, number> | undefined {
  const cells = line.split(',').map((c) => c.trim());
  const index = Number(cells[0]);
  if (cells.length !== FIELDS.length || !Number.isInteger(index) || index < 0 || index >= MAX_GPUS) return undefined;
  const n = cells.map(Number);
  const out: Record<string, number> = {};
  const put = (name: string, value: number | undefined) => {
    if (value !== undefined && Number.isFinite(value)) out[`gpu-${index}-${name}`] = value;
  };
  put('utilization-percent', n[1]);
  put('memory-used-bytes', n[2]! * MIB);
  put('memory-total-bytes', n[3]! * MIB);
  if (n[3]! > 0) put('memory-used-percent', (n[2]! / n[3]!) * 100);
  put('temperature-celsius', n[4]);
  put('power-watts', n[5]);
  return out;
}

/**
 * GPUs through nvidia-smi in loop mode: one long-lived child prints a CSV line per GPU every
 * interval, and a sample takes the latest lines, so the sample path spawns nothing. A child
 * that exits is started again on a later sample, at most once a minute.
 */
export class NvidiaSmi {
  private child: ChildProcess | undefined;
  private latest = new Map<number, { at: number; values: Record<string, number> }>();
  private diedAt = -Infinity;
  problem: string | null = null;

  constructor(
    private readonly binary: string,
    private readonly intervalMs: number,
  ) {}

  /** Copies the latest values no older than three intervals into `into`. */
  read(into: Record<string, number>, now = Date.now()): void {
    if (!this.child && now - this.diedAt >= RESTART_AFTER_MS) this.start();
    for (const { at, values } of this.latest.values()) if (now - at <= 3 * this.intervalMs + 1000) Object.assign(into, values);
  }

  private start(): void {
    const query = `--query-gpu=${FIELDS.join(',')}`;
    const child = spawn(this.binary, [query, '--format=csv,noheader,nounits', `-lms`, String(this.intervalMs)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const values = parseGpuLine(line);
      if (values) {
        this.latest.set(Number(line.split(',')[0]), { at: Date.now(), values });
        this.problem = null;
      }
    });
    const ended = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.diedAt = Date.now();
      this.problem = why;
    };
    child.once('error', (error) => ended(`nvidia-smi: ${error.message}`));
    child.once('exit', (code, signal) => ended(`nvidia-smi exited (${signal ?? code})`));
  }

  stop(): void {
    const child = this.child;
    this.child = undefined;
    child?.kill('SIGTERM');
  }
}
