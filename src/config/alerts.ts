import { z } from 'zod';
import type { AlertRule } from '../../machines/alert.js';

/** Rule and device ids become part of actor ids (`alert:<rule>:<device>`) and messages. */
const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const DEVICE = /^[A-Za-z0-9:_.-]{1,128}$/;

/** One `monitor.alerts[]` rule (the contract in issue 14); see docs/alerts.md for its semantics. */
export const AlertRuleSchema = z
  .strictObject({
    id: z.string().regex(ID, 'must be 1-64 characters of A-Z, a-z, 0-9, "_", "." or "-"').describe('rule id, unique; alerts are named alert:<id>:<device>'),
    metric: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,127}$/, 'must be a metric key such as cpu-percent')
      .describe('flattened metric key, e.g. cpu-percent'),
    op: z.enum(['>', '>=', '<', '<=']).describe('breach when value op threshold'),
    threshold: z.number().finite().describe('breach threshold'),
    clear: z.number().finite().optional().describe('a firing alert resolves when value op clear no longer holds (hysteresis); defaults to threshold'),
    forSeconds: z
      .number()
      .min(0)
      .max(7 * 86_400)
      .default(0)
      .describe('the breach must hold this long (sample time) before it fires'),
    severity: z.enum(['info', 'warning', 'critical']).default('warning').describe('shown in notices'),
    devices: z
      .union([
        z.literal('self'),
        z.literal('all'),
        z.array(z.string().regex(DEVICE, 'must be 1-128 characters of A-Z, a-z, 0-9, ":", "_", "." or "-"')).min(1).max(1000),
      ])
      .default('self')
      .describe('"self" (thingName), "all" (every device whose samples this agent sees, e.g. in collector mode) or a list of device ids'),
  })
  .refine((r) => r.clear === undefined || (r.op.startsWith('>') ? r.clear <= r.threshold : r.clear >= r.threshold), {
    message: 'clear must be on the safe side of threshold (<= threshold for ">"/">=", >= threshold for "<"/"<=")',
    path: ['clear'],
  });

export const AlertRulesSchema = z
  .array(AlertRuleSchema)
  .max(100)
  .default([])
  .refine((rules) => new Set(rules.map((r) => r.id)).size === rules.length, { message: 'rule ids must be unique' })
  .describe('threshold alert rules');

/** Settings of the alerting beside the rules; meant to sit in `monitor` next to `alerts`. */
export const AlertSettingsShape = {
  alertRateLimit: z
    .strictObject({
      max: z.number().int().min(1).max(1000).default(10).describe('notices per rule per window at most'),
      windowSeconds: z.number().positive().max(86_400).default(900).describe('the window, in sample time'),
    })
    .prefault({})
    .describe('per-rule notice rate limit; held-back notices are counted and the last state still goes out'),
  maxAlerts: z.number().int().min(1).max(100_000).default(1000).describe('rule × device alerts alive at once at most; more are refused and counted'),
  alertStaleSeconds: z.number().positive().optional().describe('no sample for this long marks an alert stale; default 3 × intervalSeconds'),
  slackMaxPending: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(10_000)
    .describe('notices kept for Slack while it is unreachable; the oldest go (counted) beyond'),
};

export type AlertRuleConfig = z.infer<typeof AlertRuleSchema>;

// The config's rule is the chart's rule (compile-time check both ways).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _ruleMatchesChart: Same<Required<AlertRuleConfig>, Required<AlertRule>> = true;
void _ruleMatchesChart;
