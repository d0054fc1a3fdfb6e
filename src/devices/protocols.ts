import type { ProtocolConfig } from './profiles.js';
import { LineSplitter } from './lines.js';
import { parseNmea } from './nmea.js';

/** One frame's outcome: a reading to publish, or why it was skipped. */
export type Frame = { ok: true; line: string; data?: unknown } | { ok: false; error: string; line?: string };

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
          const line = bytes.toString(protocol.encoding);
          if (protocol.encoding === 'utf8' && line.includes('\uFFFD')) return frame({ ok: false, error: 'not valid UTF-8' });
          if (/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) return frame({ ok: false, error: 'control characters in the line' });
          frame(decode(line));
        },
        (bytes) => frame({ ok: false, error: `line longer than ${protocol.maxLineBytes} bytes (${bytes})` }),
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
        if (line.trim() === '') return { ok: false, error: 'empty line', line };
        try {
          return { ok: true, line, data: JSON.parse(line) };
        } catch (error) {
          return { ok: false, error: `not JSON: ${(error as Error).message}`, line };
        }
      };
    case 'nmea':
      return (line) => {
        const result = parseNmea(line.trim(), protocol.requireChecksum);
        return result.ok ? { ok: true, line, data: result.data } : { ok: false, error: result.error, line };
      };
    case 'regex': {
      const re = new RegExp(protocol.pattern);
      return (line) => {
        const m = re.exec(line);
        if (!m) return { ok: false, error: 'does not match the pattern', line };
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
          if (!key) return { ok: false, error: `"${pair.trim().slice(0, 40)}" is not key${protocol.keyValueSeparator}value`, line };
          fields[key] = pair.slice(at + protocol.keyValueSeparator.length).trim();
        }
        if (Object.keys(fields).length === 0) return { ok: false, error: 'no key=value pairs', line };
        return { ok: true, line, data: protocol.numbers ? numbers(fields) : fields };
      };
  }
}

const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
function numbers(fields: Record<string, string | undefined>): Record<string, string | number | null> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v === undefined ? null : NUMBER.test(v) ? Number(v) : v]));
}
