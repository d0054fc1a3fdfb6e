import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The profiles/ directory shipped with the package (next to src/ and dist/). */
export const shippedProfilesDir = fileURLToPath(new URL('../../profiles', import.meta.url));

const hexId = z
  .string()
  .regex(/^[0-9a-fA-F]{4}$/, 'must be 4 hex digits, as in lsusb (e.g. "0403")')
  .transform((s) => s.toLowerCase());
const pattern = z.string().refine(isRegExp, { message: 'must be a valid regular expression' });

const MatchRule = z.strictObject({
  vendorId: hexId.describe('USB vendor id'),
  productId: hexId.optional().describe('USB product id; any when left out'),
  manufacturer: pattern.optional().describe('regular expression the USB manufacturer string must match'),
  product: pattern.optional().describe('regular expression the USB product string must match'),
  serial: pattern.optional().describe('regular expression the USB serial number must match'),
  interface: z.number().int().min(0).max(255).optional().describe('USB interface number of the tty'),
});

const Serial = z.strictObject({
  baudRate: z.number().int().min(50).max(4_000_000).default(9600),
  dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8),
  parity: z.enum(['none', 'even', 'odd', 'mark', 'space']).default('none'),
  stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)]).default(1),
  flowControl: z.enum(['none', 'rtscts', 'xonxoff']).default('none'),
});

const lineOptions = {
  maxLineBytes: z.number().int().min(16).max(65_536).default(4096).describe('a longer line is malformed and skipped'),
  encoding: z.enum(['utf8', 'latin1', 'ascii']).default('utf8'),
};

const Protocol = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('lines'), ...lineOptions }),
  z.strictObject({ type: z.literal('json'), ...lineOptions }),
  z.strictObject({
    type: z.literal('nmea'),
    ...lineOptions,
    maxLineBytes: z.number().int().min(16).max(65_536).default(256),
    requireChecksum: z.boolean().default(true).describe('a sentence without *hh is malformed'),
  }),
  z.strictObject({
    type: z.literal('regex'),
    ...lineOptions,
    pattern: pattern.describe('named groups become the fields of a reading; a line that does not match is malformed'),
    numbers: z.boolean().default(true).describe('fields that look like numbers are published as numbers'),
  }),
  z.strictObject({
    type: z.literal('keyvalue'),
    ...lineOptions,
    pairSeparator: z.string().min(1).default(',').describe('between pairs: "t=21.5,h=40"'),
    keyValueSeparator: z.string().min(1).default('='),
    numbers: z.boolean().default(true),
  }),
]);

const Commands = z.strictObject({
  maxBytes: z.number().int().min(1).max(4096).default(256).describe('longest command in bytes, line ending included; longer ones are refused (too_large)'),
  lineEnding: z.enum(['lf', 'crlf', 'cr', 'none']).default('lf').describe('added after each command; a command itself may not contain CR or LF'),
  pattern: pattern.optional().describe('the whole command must match this regular expression, or it is refused (not_allowed); any command when left out'),
  maxPerSecond: z.number().min(0.1).max(1000).default(10).describe('writes per second at most (a burst of that many); more are refused (rate_limited)'),
  timeoutMs: z.number().int().min(10).max(60_000).default(2000).describe('a write the port has not drained by then is refused (timeout)'),
});

export const ProfileSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)
    .optional()
    .describe('defaults to the file name without .json'),
  description: z.string().optional(),
  match: z.array(MatchRule).default([]).describe('USB identities this profile opens; any rule may match. Empty: only for ports in devices.ports[]'),
  priority: z.number().int().default(0).describe('when several profiles match, the highest priority wins, then the most specific rule'),
  serial: Serial.prefault({}),
  protocol: Protocol.prefault({ type: 'lines' }),
  publish: z
    .strictObject({
      qos: z.union([z.literal(0), z.literal(1)]).default(1),
    })
    .prefault({}),
  commands: Commands.optional().describe(
    'present: the device takes commands (MQTT .../command, POST /api/v1/devices/<id>/write, /ws); absent: every write is refused (not_writable)',
  ),
  failing: z
    .strictObject({
      malformedInARow: z.number().int().min(1).default(20).describe('this many malformed frames in a row mark the device failing'),
    })
    .prefault({}),
});

export type Profile = z.infer<typeof ProfileSchema> & { name: string; file: string };
export type ProtocolConfig = Profile['protocol'];
export type CommandsConfig = z.infer<typeof Commands>;
export type MatchRuleConfig = z.infer<typeof MatchRule>;

export interface ProfileError {
  file: string;
  message: string;
}

export interface LoadedProfiles {
  profiles: Map<string, Profile>;
  errors: ProfileError[];
}

/** Reads every *.json in `dir`. A bad file is reported (file and key) and left out; the rest load. */
export async function loadProfiles(dir: string): Promise<LoadedProfiles> {
  const profiles = new Map<string, Profile>();
  const errors: ProfileError[] = [];
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (error) {
    return { profiles, errors: [{ file: dir, message: `cannot read the profiles directory: ${(error as Error).message}` }] };
  }
  for (const name of names) {
    const file = join(dir, name);
    const result = await parseProfileFile(file);
    if ('error' in result) errors.push({ file, message: result.error });
    else if (profiles.has(result.profile.name))
      errors.push({ file, message: `name "${result.profile.name}" is already used by ${profiles.get(result.profile.name)!.file}` });
    else profiles.set(result.profile.name, result.profile);
  }
  return { profiles, errors };
}

export async function parseProfileFile(file: string): Promise<{ profile: Profile } | { error: string }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    return { error: `${file}: not valid JSON: ${(error as Error).message}` };
  }
  const parsed = ProfileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    return { error: `${file}: ${issues.join('; ')}` };
  }
  return { profile: { ...parsed.data, name: parsed.data.name ?? basename(file, '.json'), file } };
}

/** The identity of a USB serial interface, as sysfs shows it. */
export interface UsbIdentity {
  vendorId: string;
  productId: string;
  manufacturer?: string;
  product?: string;
  serial?: string;
  interface?: number;
}

const specificity = (rule: MatchRuleConfig) =>
  (rule.productId ? 1 : 0) + (rule.manufacturer ? 1 : 0) + (rule.product ? 1 : 0) + (rule.serial ? 1 : 0) + (rule.interface !== undefined ? 1 : 0);

function ruleMatches(rule: MatchRuleConfig, id: UsbIdentity): boolean {
  if (rule.vendorId !== id.vendorId.toLowerCase()) return false;
  if (rule.productId && rule.productId !== id.productId.toLowerCase()) return false;
  if (rule.interface !== undefined && rule.interface !== id.interface) return false;
  const text = (re: string | undefined, value: string | undefined) => re === undefined || (value !== undefined && new RegExp(re).test(value));
  return text(rule.manufacturer, id.manufacturer) && text(rule.product, id.product) && text(rule.serial, id.serial);
}

/** The profile for a USB identity: highest priority, then most specific rule, then name. */
export function matchProfile(profiles: Iterable<Profile>, id: UsbIdentity): Profile | undefined {
  let best: { profile: Profile; score: [number, number] } | undefined;
  for (const profile of profiles) {
    for (const rule of profile.match) {
      if (!ruleMatches(rule, id)) continue;
      const score: [number, number] = [profile.priority, specificity(rule)];
      if (
        !best ||
        score[0] > best.score[0] ||
        (score[0] === best.score[0] && (score[1] > best.score[1] || (score[1] === best.score[1] && profile.name < best.profile.name)))
      ) {
        best = { profile, score };
      }
    }
  }
  return best?.profile;
}

function isRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}
