// The job document parser as it was before the zod schema (commit fd69651), kept only as the
// reference the zod-based parser must agree with over the fuzz corpus (test/src/jobs/document-zod.test.ts).
/**
 * Job documents, schema "1.0", as the AWS IoT Device Client (DC) and the Device Operations
 * Component (DO) write them, validated whole before anything runs. Where the two differ,
 * both forms are accepted: booleans as JSON booleans or the strings DC uses; runCommand as
 * `command` + `args` (DO) or DC's comma-separated `command` ("echo,Hello World", "\," escapes).
 * The old DC schema ({operation, args, path, …}) becomes one runHandler step.
 */

export interface StepPlan {
  name: string;
  type: 'runCommand' | 'runHandler';
  /** runCommand: the command path as written; runHandler: the handler's file name */
  command: string;
  /** runHandler: the directory named by `path` ("default" or absent: jobs.handlerDir) */
  handlerDir?: string;
  args: string[];
  timeoutSeconds: number;
  runAsUser?: string;
  ignoreStepFailure: boolean;
  /** stderr lines allowed before the step fails; a non-zero exit fails it regardless */
  allowStdErr: number;
}

export interface JobPlan {
  includeStdOut: boolean;
  steps: StepPlan[];
  finalStep?: StepPlan;
}

export type Parsed = { ok: true; plan: JobPlan } | { ok: false; reason: string };

export const LIMITS = {
  documentChars: 32_768,
  steps: 32,
  args: 256,
  argChars: 4096,
  commandChars: 4096,
  minTimeoutSeconds: 1,
  maxTimeoutSeconds: 86_400,
};

class Invalid extends Error {}
const fail = (reason: string): never => {
  throw new Invalid(reason);
};

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function parseJobDocument(document: unknown, defaults: { timeoutSeconds: number }): Parsed {
  try {
    if (JSON.stringify(document ?? null).length > LIMITS.documentChars) fail(`the job document is longer than ${LIMITS.documentChars} characters`);
    const doc = object(document, 'the job document');
    if (doc.version === undefined && doc.operation !== undefined) return { ok: true, plan: fromOldSchema(doc, defaults) };
    if (doc.version !== '1.0') fail(`version must be "1.0" (got ${JSON.stringify(doc.version)})`);
    if (!Array.isArray(doc.steps) || doc.steps.length === 0) fail('steps must be a non-empty array');
    const steps = doc.steps as unknown[];
    if (steps.length > LIMITS.steps) fail(`at most ${LIMITS.steps} steps`);
    return {
      ok: true,
      plan: {
        includeStdOut: bool(doc.includeStdOut, 'includeStdOut'),
        steps: Array.from(steps, (s, i) => step(s, `steps[${i}]`, defaults)),
        finalStep: doc.finalStep === undefined || doc.finalStep === null ? undefined : step(doc.finalStep, 'finalStep', defaults),
      },
    };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, reason: `invalid job document: ${error.message}` };
    throw error;
  }
}

function step(raw: unknown, where: string, defaults: { timeoutSeconds: number }): StepPlan {
  const action = object(object(raw, where).action, `${where}.action`);
  const at = `${where}.action`;
  const name = text(action.name, `${at}.name`, 128);
  const input = object(action.input, `${at}.input`);
  const common = {
    name,
    timeoutSeconds: timeout(input.timeout, `${at}.input.timeout`, defaults.timeoutSeconds),
    runAsUser: user(action.runAsUser, `${at}.runAsUser`),
    ignoreStepFailure: bool(action.ignoreStepFailure, `${at}.ignoreStepFailure`),
    allowStdErr: count(action.allowStdErr, `${at}.allowStdErr`),
  };
  if (action.type === 'runCommand') {
    const { command, args } = commandLine(input, `${at}.input`);
    return { type: 'runCommand', command, args, ...common };
  }
  if (action.type === 'runHandler') {
    const handler = text(input.handler, `${at}.input.handler`, 255);
    if (handler.includes('/') || handler === '.' || handler === '..') fail(`${at}.input.handler must be a file name, not a path`);
    const dir =
      input.path === undefined || input.path === null || input.path === 'default' ? undefined : text(input.path, `${at}.input.path`, LIMITS.commandChars);
    return { type: 'runHandler', command: handler, handlerDir: dir, args: strings(input.args, `${at}.input.args`), ...common };
  }
  return fail(`${at}.type must be "runCommand" or "runHandler" (got ${JSON.stringify(action.type)})`);
}

/** DO's command + args, or DC's "cmd,arg,arg" with "\," for a literal comma. */
function commandLine(input: Record<string, unknown>, at: string): { command: string; args: string[] } {
  const command = text(input.command, `${at}.command`, LIMITS.commandChars);
  if (input.args !== undefined) return { command, args: strings(input.args, `${at}.args`) };
  const parts = command.split(/(?<!\\),/).map((p) => p.replace(/\\,/g, ','));
  if (/\s/.test(parts[0])) fail(`${at}.command: the program "${parts[0]}" contains whitespace (no shell runs it; use "program,arg,arg" or args)`);
  const args = parts.slice(1);
  checkArgs(args, `${at}.command`);
  return { command: parts[0], args };
}

function fromOldSchema(doc: Record<string, unknown>, defaults: { timeoutSeconds: number }): JobPlan {
  const handler = text(doc.operation, 'operation', 255);
  if (handler.includes('/')) fail('operation must be a handler file name');
  const dir = doc.path === undefined || doc.path === 'default' ? undefined : text(doc.path, 'path', LIMITS.commandChars);
  return {
    includeStdOut: bool(doc.includeStdOut, 'includeStdOut'),
    steps: [
      {
        name: handler,
        type: 'runHandler',
        command: handler,
        handlerDir: dir,
        args: strings(doc.args, 'args'),
        timeoutSeconds: defaults.timeoutSeconds,
        ignoreStepFailure: false,
        allowStdErr: count(doc.allowStdErr, 'allowStdErr'),
      },
    ],
  };
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function text(value: unknown, what: string, max: number): string {
  if (typeof value !== 'string' || value.trim() === '') fail(`${what} must be a non-empty string`);
  const s = value as string;
  if (s.length > max) fail(`${what} is longer than ${max} characters`);
  if (CONTROL.test(s)) fail(`${what} contains NUL or control characters`);
  return s;
}

function strings(value: unknown, what: string): string[] {
  if (value === undefined || value === null) return [];
  // Array.from: a sparse array's holes are values too (undefined), not skipped
  const list = Array.isArray(value) ? Array.from(value as unknown[]) : [];
  if (!Array.isArray(value) || list.some((v) => typeof v !== 'string')) fail(`${what} must be an array of strings`);
  checkArgs(list as string[], what);
  return list as string[];
}

function checkArgs(args: string[], what: string): void {
  if (args.length > LIMITS.args) fail(`${what}: at most ${LIMITS.args} arguments`);
  for (const [i, arg] of args.entries()) {
    if (arg.length > LIMITS.argChars) fail(`${what}[${i}] is longer than ${LIMITS.argChars} characters`);
    if (arg.includes('\u0000')) fail(`${what}[${i}] contains a NUL character`);
  }
}

/** JSON booleans, or DC's strings "true"/"false". */
function bool(value: unknown, what: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  return fail(`${what} must be true or false`);
}

function count(value: unknown, what: string): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) fail(`${what} must be a whole number of lines, 0 or more`);
  return n as number;
}

function timeout(value: unknown, what: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < LIMITS.minTimeoutSeconds || n > LIMITS.maxTimeoutSeconds) {
    fail(`${what} must be whole seconds from ${LIMITS.minTimeoutSeconds} to ${LIMITS.maxTimeoutSeconds}`);
  }
  return n as number;
}

function user(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !/^[a-z_][a-z0-9_.-]{0,31}$/i.test(value)) fail(`${what} must be a user name`);
  return value as string;
}
