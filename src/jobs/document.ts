/**
 * Job documents, schema "1.0", as the AWS IoT Device Client (DC) and the Device Operations
 * Component (DO) write them, validated whole before anything runs, through zod (the schema
 * library of the config; docs/job-document.schema.json is generated from it). Where the two
 * differ, both forms are accepted: booleans as JSON booleans or the strings DC uses;
 * runCommand as `command` + `args` (DO) or DC's comma-separated `command` ("echo,Hello World",
 * "\," escapes). The old DC schema ({operation, args, path, …}) becomes one runHandler step.
 * Every refusal names the first field that failed, with its path ("steps[0].action.name …").
 */
import { z } from 'zod';

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

/** C0 and C1 control characters and DEL: refused in every name, program and argument (DESIGN's security model). */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// Messages are templates: {at} becomes the path of the field that failed.
const text = (max: number) =>
  z
    .string({ error: '{at} must be a non-empty string' })
    .refine((s) => s.trim() !== '', '{at} must be a non-empty string')
    .max(max, `{at} is longer than ${max} characters`)
    .refine((s) => !CONTROL.test(s), '{at} contains NUL or control characters');

/** The program of a runCommand step, in either form: no shell runs it, so no whitespace. */
const program = text(LIMITS.commandChars).superRefine((s, ctx) => {
  if (/\s/.test(s)) ctx.addIssue({ code: 'custom', message: `{at}: the program "${s}" contains whitespace (no shell runs it; use "program,arg,arg" or args)` });
});

/** One rule for arguments in every form: at most LIMITS.args, each bounded, no control characters. */
const STRINGS = '{at} must be an array of strings';
const argList = z
  .array(z.unknown(), { error: STRINGS })
  .refine((list) => list.every((arg) => typeof arg === 'string'), STRINGS)
  .max(LIMITS.args, `{at}: at most ${LIMITS.args} arguments`)
  .pipe(
    z.array(
      z
        .string()
        .max(LIMITS.argChars, `{at} is longer than ${LIMITS.argChars} characters`)
        .refine((s) => !s.includes('\u0000'), '{at} contains a NUL character')
        .refine((s) => !CONTROL.test(s), '{at} contains a control character'),
    ),
  );
const args = argList.nullish().transform((a) => a ?? []);

// (a union whose option has the input's type reports that option's issue: each carries the message)
/** JSON booleans, or DC's strings "true"/"false". */
const BOOL = '{at} must be true or false';
const bool = z
  .union([z.boolean({ error: BOOL }), z.string({ error: BOOL }).regex(/^(true|false)$/i, BOOL)], { error: BOOL })
  .nullish()
  .transform((v) => v === true || (typeof v === 'string' && v.toLowerCase() === 'true'));

/** A whole number from `min` to `max`, or its digits as a string (DC writes numbers as strings). */
const whole = (min: number, max: number, message: string) => {
  const int = z.int({ error: message }).min(min, message).max(max, message);
  return z.union([int, z.string({ error: message }).regex(/^\d+$/, message).transform(Number).pipe(int)], { error: message }).nullish();
};

const count = whole(0, Number.MAX_SAFE_INTEGER, '{at} must be a whole number of lines, 0 or more').transform((n) => n ?? 0);
const timeout = whole(
  LIMITS.minTimeoutSeconds,
  LIMITS.maxTimeoutSeconds,
  `{at} must be whole seconds from ${LIMITS.minTimeoutSeconds} to ${LIMITS.maxTimeoutSeconds}`,
).transform((n) => n ?? undefined);
const USER = '{at} must be a user name';
const user = z
  .union([z.literal(''), z.string({ error: USER }).regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, USER)], { error: USER })
  .nullish()
  .transform((u) => u || undefined);

const object = <T extends z.core.$ZodLooseShape>(shape: T) => z.looseObject(shape, { error: '{at} must be an object' });

/** DO's command + args. */
const commandWithArgs = object({ command: program, args: argList });
/** DC's "cmd,arg,arg" with "\," for a literal comma: the same program and argument rules. */
const commaCommand = object({
  command: text(LIMITS.documentChars).transform((line, ctx) => {
    const parts = line.split(/(?<!\\),/).map((p) => p.replace(/\\,/g, ','));
    return { command: sub(program, parts[0], ctx, []), args: sub(argList, parts.slice(1), ctx, []) };
  }),
});
const handlerInput = object({
  handler: text(255).refine((h) => !h.includes('/') && h !== '.' && h !== '..', '{at} must be a file name, not a path'),
  path: text(LIMITS.commandChars).nullish(),
  args,
});

/** A sub-schema's result, its issues (path `at` below the current one) reported as this schema's. */
function sub<T>(schema: z.ZodType<T>, value: unknown, ctx: z.core.$RefinementCtx, at: PropertyKey[]): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) ctx.issues.push({ code: 'custom', message: issue.message, input: value, path: [...at, ...issue.path] });
  return undefined as T;
}

const action = object({
  name: text(128),
  input: object({ timeout }),
  runAsUser: user,
  ignoreStepFailure: bool,
  allowStdErr: count,
  // type is checked last, after the fields every action has (as the Device Client reads them)
}).transform((a, ctx) => {
  const common = { name: a.name, timeoutSeconds: a.input.timeout, runAsUser: a.runAsUser, ignoreStepFailure: a.ignoreStepFailure, allowStdErr: a.allowStdErr };
  if (a.type === 'runCommand') {
    const line = a.input.args !== undefined ? sub(commandWithArgs, a.input, ctx, ['input']) : sub(commaCommand, a.input, ctx, ['input'])?.command;
    return { type: 'runCommand' as const, command: line?.command, args: line?.args, ...common };
  }
  if (a.type === 'runHandler') {
    const input = sub(handlerInput, a.input, ctx, ['input']);
    return {
      type: 'runHandler' as const,
      command: input?.handler,
      handlerDir: input?.path === 'default' ? undefined : (input?.path ?? undefined),
      args: input?.args,
      ...common,
    };
  }
  ctx.issues.push({ code: 'custom', message: `{at} must be "runCommand" or "runHandler" (got ${JSON.stringify(a.type)})`, input: a.type, path: ['type'] });
  return z.NEVER;
});
const step = object({ action });

/** Schema "1.0". The steps' contents are read once the document's own fields passed. */
export const JobDocumentSchema = object({
  version: z.literal('1.0', { error: (issue) => `{at} must be "1.0" (got ${JSON.stringify(issue.input)})` }),
  steps: z
    .array(z.unknown(), { error: '{at} must be a non-empty array' })
    .min(1, '{at} must be a non-empty array')
    .max(LIMITS.steps, `at most ${LIMITS.steps} steps`),
  includeStdOut: bool,
  finalStep: z.unknown().optional(),
}).transform((doc, ctx) => ({
  includeStdOut: doc.includeStdOut,
  steps: sub(z.array(step), doc.steps, ctx, ['steps'])?.map((s) => s.action),
  finalStep: doc.finalStep === undefined || doc.finalStep === null ? undefined : sub(step, doc.finalStep, ctx, ['finalStep'])?.action,
}));

/** DC's old schema: one handler, no version. */
export const OldJobDocumentSchema = object({
  operation: text(255).refine((h) => !h.includes('/'), 'operation must be a handler file name'),
  path: text(LIMITS.commandChars).optional(),
  includeStdOut: bool,
  args,
  allowStdErr: count,
}).transform((doc) => ({
  includeStdOut: doc.includeStdOut,
  steps: [
    {
      name: doc.operation,
      type: 'runHandler' as const,
      command: doc.operation,
      handlerDir: doc.path === 'default' ? undefined : doc.path,
      args: doc.args,
      timeoutSeconds: undefined,
      ignoreStepFailure: false,
      allowStdErr: doc.allowStdErr,
    },
  ],
  finalStep: undefined,
}));

/**
 * What a job author reads (docs/job-document.schema.json): the same field schemas as the
 * parser, arranged by where they appear rather than in the order they are checked.
 */
export function jobDocumentJsonSchema(): Record<string, unknown> {
  const input = z.union([
    commandWithArgs.extend({ timeout }).describe('runCommand, DO form: the program and its arguments, never through a shell'),
    commaCommand.extend({ timeout }).describe('runCommand, Device Client form: "program,arg,arg" ("\\," for a comma)'),
    handlerInput.extend({ timeout }).describe('runHandler: a file in path (or jobs.handlerDir when "default" or absent)'),
  ]);
  const documented = object({
    name: text(128),
    type: z.enum(['runCommand', 'runHandler']),
    input,
    runAsUser: user.describe('run the step as this user (the agent needs the rights)'),
    ignoreStepFailure: bool.describe('a failure of this step does not fail the job (never for finalStep)'),
    allowStdErr: count.describe('stderr lines allowed before the step fails'),
  });
  const stepSchema = object({ action: documented });
  const v1 = object({
    version: z.literal('1.0'),
    includeStdOut: bool.describe("report the end of the steps' stdout (one tail across all steps)"),
    steps: z.array(stepSchema).min(1).max(LIMITS.steps),
    finalStep: stepSchema.optional().describe('runs after the steps, whatever happened; its failure fails the job'),
  });
  const old = object({ operation: text(255), path: text(LIMITS.commandChars).optional(), args, includeStdOut: bool, allowStdErr: count });
  const schema = z.union([v1.describe('schema 1.0'), old.describe("the Device Client's old schema: one handler")]);
  return { title: 'edgevisor job document', ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) };
}

type Raw = z.output<typeof JobDocumentSchema> | z.output<typeof OldJobDocumentSchema>;

export function parseJobDocument(document: unknown, defaults: { timeoutSeconds: number }): Parsed {
  const invalid = (reason: string): Parsed => ({ ok: false, reason: `invalid job document: ${reason}` });
  if (JSON.stringify(document ?? null).length > LIMITS.documentChars) return invalid(`the job document is longer than ${LIMITS.documentChars} characters`);
  const old = isObject(document) && document.version === undefined && document.operation !== undefined;
  const result = (old ? OldJobDocumentSchema : JobDocumentSchema).safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0];
    return invalid(issue.message.replaceAll('{at}', pathText(issue.path)));
  }
  return { ok: true, plan: withDefaults(result.data as Raw, defaults) };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** steps[0].action.input.args[2]; the document itself when the path is empty. */
function pathText(path: PropertyKey[]): string {
  if (path.length === 0) return 'the job document';
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join('');
}

function withDefaults(raw: Raw, defaults: { timeoutSeconds: number }): JobPlan {
  const fill = (s: Raw['steps'][number]): StepPlan => {
    const plan: StepPlan = {
      name: s.name,
      type: s.type,
      command: s.command!,
      args: s.args!,
      timeoutSeconds: s.timeoutSeconds ?? defaults.timeoutSeconds,
      ignoreStepFailure: s.ignoreStepFailure,
      allowStdErr: s.allowStdErr,
    };
    if (s.type === 'runHandler') plan.handlerDir = (s as { handlerDir?: string }).handlerDir;
    if ((s as { runAsUser?: string }).runAsUser !== undefined) plan.runAsUser = (s as { runAsUser?: string }).runAsUser;
    return plan;
  };
  return { includeStdOut: raw.includeStdOut, steps: raw.steps!.map(fill), finalStep: raw.finalStep ? fill(raw.finalStep) : undefined };
}
