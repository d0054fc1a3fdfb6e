import type { WriteRefusal } from '../../machines/device.js';
import type { CommandsConfig } from './profiles.js';

export type CheckedCommand = { ok: true; data: string; bytes: number } | { ok: false; reason: WriteRefusal; message: string };

const endings: Record<CommandsConfig['lineEnding'], string> = { lf: '\n', crlf: '\r\n', cr: '\r', none: '' };
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Control characters other than tab: a command is one line of text. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const patterns = new Map<string, RegExp>();

/**
 * A command checked against its profile's allowlist: the profile takes commands, the text is
 * valid UTF-8 on one line, matches the profile's pattern (whole) and fits maxBytes with the
 * line ending added. Returns the exact text to write, or why it is refused.
 */
export function checkCommand(commands: CommandsConfig | undefined, raw: string | Uint8Array): CheckedCommand {
  if (!commands) return { ok: false, reason: 'not_writable', message: 'this device takes no commands (its profile has no "commands" section)' };
  let text: string;
  if (typeof raw === 'string') text = raw;
  else {
    // far beyond any maxBytes: refused before it is decoded
    if (raw.length > 4 * commands.maxBytes + 16) return tooLarge(raw.length, commands);
    try {
      text = strictUtf8.decode(raw);
    } catch {
      return { ok: false, reason: 'bad_command', message: 'the command is not valid UTF-8' };
    }
  }
  if (text.length > 4 * commands.maxBytes + 16) return tooLarge(Buffer.byteLength(text), commands);
  if (text.length === 0) return { ok: false, reason: 'bad_command', message: 'the command is empty' };
  if (LONE_SURROGATE.test(text)) return { ok: false, reason: 'bad_command', message: 'the command has a lone surrogate' };
  if (CONTROL.test(text))
    return { ok: false, reason: 'bad_command', message: 'the command has a line break or another control character (the line ending is added by the agent)' };
  const pattern = commands.pattern === undefined ? undefined : wholeMatch(commands.pattern);
  if (pattern && !pattern.test(text))
    return { ok: false, reason: 'not_allowed', message: `the command does not match the profile's pattern ${commands.pattern}` };
  const data = text + endings[commands.lineEnding];
  const bytes = Buffer.byteLength(data);
  if (bytes > commands.maxBytes) return tooLarge(bytes, commands);
  return { ok: true, data, bytes };
}

function tooLarge(bytes: number, commands: CommandsConfig): CheckedCommand {
  return { ok: false, reason: 'too_large', message: `the command is ${bytes} bytes with its line ending; the profile allows ${commands.maxBytes}` };
}

function wholeMatch(source: string): RegExp {
  let re = patterns.get(source);
  if (!re) {
    re = new RegExp(`^(?:${source})$`);
    if (patterns.size > 256) patterns.clear();
    patterns.set(source, re);
  }
  return re;
}
