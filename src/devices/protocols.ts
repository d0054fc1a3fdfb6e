import type { ProtocolConfig } from './profiles.js';
import { LineSplitter } from './lines.js';
import { parseNmea } from './nmea.js';

/**
 * Why a frame was rejected: a fixed set of codes, so a metrics label stays bounded whatever
 * a device sends. The message beside the code says the detail.
 */
export const frameRejections = [
  'invalid_utf8',
  'control_characters',
  'too_long',
  'not_json',
  'no_match',
  'not_key_value',
  'no_checksum',
  'bad_checksum',
  'bad_sentence',
] as const;
export type FrameRejection = (typeof frameRejections)[number];

/** One frame's outcome: a reading to publish, or why it was skipped. */
export type Frame = { ok: true; line: string; data?: unknown } | { ok: false; reason: FrameRejection; error: string; line?: string };

// fatal: invalid UTF-8 throws instead of becoming U+FFFD, so a real U+FFFD in the text is kept
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The line's text, or undefined when its bytes are not valid in the encoding. */
function textOf(bytes: Buffer, encoding: ProtocolConfig['encoding']): string | undefined {
  if (encoding !== 'utf8') return bytes.toString(encoding);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export interface Parser {
  /** Feeds bytes; calls `frame` for every whole frame, good or malformed. */
  push(chunk: Buffer, frame: (f: Frame) => void): void;
}

/** A parser for a profile's protocol: a line splitter plus a per-line decoder. */
export function createParser(protocol: ProtocolConfig): Parser {
  const splitter = new LineSplitter(protocol.maxLineBytes);
  const decode = lineDecoder(protocol);
  return {
    push(chunk, frame) {
      splitter.push(
        chunk,
        (bytes) => {
          if (bytes.length === 0) return; // blank lines (keep-alives, CRLF pairs) are no frames
          const line = textOf(bytes, protocol.encoding);
          if (line === undefined) return frame({ ok: false, reason: 'invalid_utf8', error: 'not valid UTF-8' });
          if (/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) return frame({ ok: false, reason: 'control_characters', error: 'control characters in the line' });
          frame(decode(line));
        },
        (bytes) => frame({ ok: false, reason: 'too_long', error: `line longer than ${protocol.maxLineBytes} bytes (${bytes})` }),
      );
    },
  };
}

function lineDecoder(protocol: ProtocolConfig): (line: string) => Frame {
  switch (protocol.type) {
    case 'lines':
      return (line) => ({ ok: true, line });
    case 'json':
      return (line) => {
        if (line.trim() === '') return { ok: false, reason: 'not_json', error: 'empty line', line };
        try {
          return { ok: true, line, data: JSON.parse(line) };
        } catch (error) {
          return { ok: false, reason: 'not_json', error: `not JSON: ${(error as Error).message}`, line };
        }
      };
    case 'nmea':
      return (line) => {
        const result = parseNmea(line.trim(), protocol.requireChecksum);
        return result.ok ? { ok: true, line, data: result.data } : { ok: false, reason: result.reason, error: result.error, line };
      };
    case 'regex': {
      const re = new RegExp(protocol.pattern);
      return (line) => {
        const m = re.exec(line);
        if (!m) return { ok: false, reason: 'no_match', error: 'does not match the pattern', line };
        const fields = m.groups ? { ...m.groups } : Object.fromEntries(m.slice(1).map((v, i) => [String(i + 1), v]));
        return { ok: true, line, data: protocol.numbers ? numbers(fields) : fields };
      };
    }
    case 'keyvalue':
      return (line) => {
        const fields: Record<string, string> = {};
        for (const pair of line.split(protocol.pairSeparator)) {
          if (pair.trim() === '') continue;
          const at = pair.indexOf(protocol.keyValueSeparator);
          const key = at > 0 ? pair.slice(0, at).trim() : '';
          if (!key) return { ok: false, reason: 'not_key_value', error: `"${pair.trim().slice(0, 40)}" is not key${protocol.keyValueSeparator}value`, line };
          fields[key] = pair.slice(at + protocol.keyValueSeparator.length).trim();
        }
        if (Object.keys(fields).length === 0) return { ok: false, reason: 'not_key_value', error: 'no key=value pairs', line };
        return { ok: true, line, data: protocol.numbers ? numbers(fields) : fields };
      };
  }
}

const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
function numbers(fields: Record<string, string | undefined>): Record<string, string | number | null> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v === undefined ? null : NUMBER.test(v) ? Number(v) : v]));
}
