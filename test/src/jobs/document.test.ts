import { describe, expect, it } from 'vitest';
import { parseJobDocument, type Parsed } from '../../../src/jobs/document.js';
import { documentFuzzer } from '../../support/fuzz-documents.js';

const defaults = { timeoutSeconds: 600 };
const parse = (doc: unknown) => parseJobDocument(doc, defaults);
const planOf = (parsed: Parsed) => {
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.plan;
};
const reasonOf = (parsed: Parsed) => (parsed.ok ? undefined : parsed.reason);

const runCommand = (input: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  version: '1.0',
  steps: [{ action: { name: 'step', type: 'runCommand', input, ...extra } }],
});

describe('job documents', () => {
  it('reads a Device Operations Component document: command + args, JSON booleans, timeout, finalStep', () => {
    const plan = planOf(
      parse({
        version: '1.0',
        includeStdOut: true,
        steps: [
          {
            action: {
              name: 'disk',
              type: 'runCommand',
              input: { command: '/usr/bin/df', args: ['-h', '/'], timeout: 30 },
              ignoreStepFailure: true,
              allowStdErr: 2,
            },
          },
        ],
        finalStep: { action: { name: 'cleanup', type: 'runCommand', input: { command: '/bin/true' } } },
      }),
    );
    expect(plan).toEqual({
      includeStdOut: true,
      steps: [
        {
          name: 'disk',
          type: 'runCommand',
          command: '/usr/bin/df',
          args: ['-h', '/'],
          timeoutSeconds: 30,
          runAsUser: undefined,
          ignoreStepFailure: true,
          allowStdErr: 2,
        },
      ],
      finalStep: {
        name: 'cleanup',
        type: 'runCommand',
        command: '/bin/true',
        args: [],
        timeoutSeconds: 600,
        runAsUser: undefined,
        ignoreStepFailure: false,
        allowStdErr: 0,
      },
    });
  });

  it('reads a Device Client document: comma-separated command with \\, escapes, string booleans, runHandler', () => {
    const plan = planOf(
      parse({
        version: '1.0',
        includeStdOut: 'true',
        conditions: [],
        steps: [
          { action: { name: 'say', type: 'runCommand', input: { command: '/bin/echo,Hello World,a\\,b' }, ignoreStepFailure: 'false' } },
          {
            action: {
              name: 'reboot',
              type: 'runHandler',
              input: { handler: 'reboot.sh', path: 'default', args: ['now'] },
              runAsUser: 'root',
              allowStdErr: '3',
            },
          },
        ],
      }),
    );
    expect(plan.includeStdOut).toBe(true);
    expect(plan.steps[0]).toMatchObject({ command: '/bin/echo', args: ['Hello World', 'a,b'], ignoreStepFailure: false });
    expect(plan.steps[1]).toMatchObject({ type: 'runHandler', command: 'reboot.sh', handlerDir: undefined, args: ['now'], runAsUser: 'root', allowStdErr: 3 });
  });

  it('turns the old Device Client schema into one runHandler step', () => {
    const plan = planOf(parse({ operation: 'install-packages.sh', args: ['lftp'], allowStdErr: 1, includeStdOut: 'true' }));
    expect(plan.steps).toEqual([
      {
        name: 'install-packages.sh',
        type: 'runHandler',
        command: 'install-packages.sh',
        handlerDir: undefined,
        args: ['lftp'],
        timeoutSeconds: 600,
        ignoreStepFailure: false,
        allowStdErr: 1,
      },
    ]);
  });

  it.each([
    ['not an object', 'echo', 'the job document must be an object'],
    ['an array', [], 'the job document must be an object'],
    ['a wrong version', { version: '2.0', steps: [] }, 'version must be "1.0" (got "2.0")'],
    ['no steps', { version: '1.0', steps: [] }, 'steps must be a non-empty array'],
    [
      'an unknown action type',
      { version: '1.0', steps: [{ action: { name: 'x', type: 'runShell', input: {} } }] },
      'steps[0].action.type must be "runCommand" or "runHandler"',
    ],
    [
      'a step without a name',
      { version: '1.0', steps: [{ action: { type: 'runCommand', input: { command: '/bin/true' } } }] },
      'steps[0].action.name must be a non-empty string',
    ],
    ['no command', runCommand({}), 'steps[0].action.input.command must be a non-empty string'],
    ['a shell line as command', runCommand({ command: 'rm -rf /' }), 'the program "rm -rf /" contains whitespace'],
    ['a NUL in the command', runCommand({ command: '/bin/echo\u0000x' }), 'contains NUL or control characters'],
    ['a NUL in an argument', runCommand({ command: '/bin/echo', args: ['a\u0000b'] }), 'steps[0].action.input.args[0] contains a NUL character'],
    ['an over-long argument', runCommand({ command: '/bin/echo', args: ['x'.repeat(5000)] }), 'is longer than 4096 characters'],
    ['too many arguments', runCommand({ command: '/bin/echo', args: Array(300).fill('x') }), 'at most 256 arguments'],
    ['non-string arguments', runCommand({ command: '/bin/echo', args: [1, 2] }), 'args must be an array of strings'],
    ['a zero timeout', runCommand({ command: '/bin/true', timeout: 0 }), 'timeout must be whole seconds from 1 to 86400'],
    ['a fractional timeout', runCommand({ command: '/bin/true', timeout: 1.5 }), 'timeout must be whole seconds'],
    ['a bad boolean', runCommand({ command: '/bin/true' }, { ignoreStepFailure: 'yes' }), 'ignoreStepFailure must be true or false'],
    ['a negative allowStdErr', runCommand({ command: '/bin/true' }, { allowStdErr: -1 }), 'allowStdErr must be a whole number'],
    ['a bad user', runCommand({ command: '/bin/true' }, { runAsUser: 'root; reboot' }), 'runAsUser must be a user name'],
    [
      'a handler with a path in it',
      { version: '1.0', steps: [{ action: { name: 'h', type: 'runHandler', input: { handler: '../../bin/sh' } } }] },
      'handler must be a file name, not a path',
    ],
    ['an over-long document', runCommand({ command: '/bin/echo', args: Array(100).fill('x'.repeat(400)) }), 'longer than 32768 characters'],
  ])('refuses %s with a reason', (_what, doc, reason) => {
    expect(reasonOf(parse(doc))).toContain(reason);
    expect(reasonOf(parse(doc))).toMatch(/^invalid job document: /);
  });

  it('one argument rule for every form: control characters, NUL and over-long arguments are refused in args[], the comma form and runHandler alike', () => {
    const handler = (args: string[]) => ({ version: '1.0', steps: [{ action: { name: 'h', type: 'runHandler', input: { handler: 'h.sh', args } } }] });
    for (const bad of ['a\nb', 'tab\there', 'esc\u001b[2J', 'del\u007f', 'c1\u0085', 'nul\u0000']) {
      const comma = reasonOf(parse(runCommand({ command: `/bin/echo,ok,${bad}` })));
      const list = reasonOf(parse(runCommand({ command: '/bin/echo', args: ['ok', bad] })));
      const fromHandler = reasonOf(parse(handler(['ok', bad])));
      expect([comma, list, fromHandler], JSON.stringify(bad)).toEqual([
        expect.stringMatching(/control|NUL/),
        expect.stringMatching(/args\[1\] contains a (control|NUL)/),
        expect.stringMatching(/args\[1\] contains a (control|NUL)/),
      ]);
    }
    // what one form accepts, the other does too: two long arguments (each under the limit)
    const long = 'y'.repeat(3000);
    expect(planOf(parse(runCommand({ command: `/bin/echo,${long},${long}` }))).steps[0].args).toEqual([long, long]);
    expect(planOf(parse(runCommand({ command: '/bin/echo', args: [long, long] }))).steps[0].args).toEqual([long, long]);
    // and a program with whitespace is refused in both
    expect(reasonOf(parse(runCommand({ command: 'rm -rf /', args: [] })))).toContain('contains whitespace');
    // printable text, spaces and non-ASCII letters stay arguments
    expect(planOf(parse(runCommand({ command: '/bin/echo', args: ['Grüße, world 😀'] }))).steps[0].args).toEqual(['Grüße, world 😀']);
  });

  it('validates the finalStep too, before anything runs', () => {
    const doc = { ...runCommand({ command: '/bin/true' }), finalStep: { action: { name: 'f', type: 'runCommand', input: {} } } };
    expect(reasonOf(parse(doc))).toContain('finalStep.action.input.command must be a non-empty string');
  });

  it('fuzz: thousands of generated and mutated documents are each parsed or refused with a reason, never thrown', () => {
    const next = documentFuzzer(12345);
    let parsed = 0;
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const result = parse(next());
      if (result.ok) {
        parsed++;
        for (const s of [...result.plan.steps, ...(result.plan.finalStep ? [result.plan.finalStep] : [])]) {
          expect(typeof s.command).toBe('string');
          expect(s.args.every((a) => typeof a === 'string')).toBe(true);
          expect(s.timeoutSeconds).toBeGreaterThanOrEqual(1);
        }
      } else {
        refused++;
        expect(result.reason).toMatch(/^invalid job document: .+/);
      }
    }
    expect(parsed).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });
});
