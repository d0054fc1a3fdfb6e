import { describe, expect, it } from 'vitest';
import { ProfileSchema, type ProtocolConfig } from '../../../src/devices/profiles.js';
import { createParser, frameRejections, type Frame } from '../../../src/devices/protocols.js';
import { parseNmea } from '../../../src/devices/nmea.js';

const protocol = (p: Record<string, unknown>) => ProfileSchema.parse({ protocol: p }).protocol as ProtocolConfig;
function parse(p: Record<string, unknown>, ...chunks: Array<string | Buffer>): Frame[] {
  const parser = createParser(protocol(p));
  const frames: Frame[] = [];
  for (const chunk of chunks) parser.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk), (f) => frames.push(f));
  return frames;
}
/** A sentence with its checksum computed, as a receiver sends it. */
const nmea = (body: string) => {
  let sum = 0;
  for (const c of body) sum ^= c.charCodeAt(0);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}`;
};

describe('line framing', () => {
  it('joins lines split across reads, strips CR, skips blank lines, and keeps the text verbatim', () => {
    expect(parse({ type: 'lines' }, 'tem', 'p=21.5\r', '\nhum=40\n\n\r\n', '  spaced  \n', 'partial')).toEqual([
      { ok: true, line: 'temp=21.5' },
      { ok: true, line: 'hum=40' },
      { ok: true, line: '  spaced  ' },
    ]);
  });

  it('counts an over-long line once as malformed, without keeping it, and goes on with the next', () => {
    const long = 'x'.repeat(100);
    const frames = parse({ type: 'lines', maxLineBytes: 32 }, long.slice(0, 50), long.slice(50), '\nok\n');
    expect(frames).toEqual([
      { ok: false, reason: 'too_long', error: 'line longer than 32 bytes (100)' },
      { ok: true, line: 'ok' },
    ]);
  });

  it('refuses invalid UTF-8 and control characters as malformed', () => {
    const frames = parse({ type: 'lines' }, Buffer.from([0xff, 0xfe, 0x41, 0x0a]), 'a\x00b\n', 'fine\tTab\n');
    expect(frames.map((f) => f.ok)).toEqual([false, false, true]);
    expect(frames[0]).toMatchObject({ reason: 'invalid_utf8', error: 'not valid UTF-8' });
    expect(frames[1]).toMatchObject({ reason: 'control_characters' });
  });

  it('keeps a valid line that contains U+FFFD (the replacement character sent as text), and refuses every kind of invalid UTF-8', () => {
    const replacement = Buffer.from('status: \uFFFD unknown\n', 'utf8'); // EF BF BD
    expect(parse({ type: 'lines' }, replacement)).toEqual([{ ok: true, line: 'status: \uFFFD unknown' }]);
    expect(parse({ type: 'json' }, Buffer.from('{"name":"\uFFFD"}\n'))[0]).toMatchObject({ ok: true, data: { name: '\uFFFD' } });
    const invalid = [
      [0xc3, 0x28], // a lead byte without its continuation
      [0xe2, 0x82], // truncated three-byte sequence
      [0xc0, 0xaf], // overlong encoding of "/"
      [0xed, 0xa0, 0x80], // an encoded surrogate (U+D800)
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0x80], // a lone continuation byte
    ];
    for (const bytes of invalid) {
      expect(parse({ type: 'lines' }, Buffer.from([0x41, ...bytes, 0x0a]))).toEqual([{ ok: false, reason: 'invalid_utf8', error: 'not valid UTF-8' }]);
    }
  });

  it('gives every rejection a code from the fixed set', () => {
    const reasons = [
      ...parse({ type: 'json' }, 'nope\n'),
      ...parse({ type: 'regex', pattern: '^a$' }, 'b\n'),
      ...parse({ type: 'keyvalue' }, 'x\n'),
      ...parse({ type: 'nmea' }, '$GPGSA,A*00\n$GPGSA,A\nGPGSA\n'),
    ].map((f) => (f.ok ? 'ok' : f.reason));
    expect(reasons).toEqual(['not_json', 'no_match', 'not_key_value', 'bad_checksum', 'no_checksum', 'bad_sentence']);
    for (const reason of reasons) expect(frameRejections).toContain(reason);
  });
});

describe('protocols', () => {
  it('json: a parsed object next to the line; anything else malformed', () => {
    expect(parse({ type: 'json' }, '{"t":21.5,"ok":true}\n[1,2]\n{"t":\nnot json\n')).toEqual([
      { ok: true, line: '{"t":21.5,"ok":true}', data: { t: 21.5, ok: true } },
      { ok: true, line: '[1,2]', data: [1, 2] },
      expect.objectContaining({ ok: false, line: '{"t":' }),
      expect.objectContaining({ ok: false, line: 'not json' }),
    ]);
  });

  it('regex: named groups become fields, numbers as numbers; a non-matching line is malformed', () => {
    const p = { type: 'regex', pattern: '^T=(?<temp>-?\\d+(?:\\.\\d+)?) H=(?<hum>\\d+) ID=(?<id>\\w+)$' };
    expect(parse(p, 'T=-3.5 H=40 ID=a7\nT=x H=1 ID=b\n')).toEqual([
      { ok: true, line: 'T=-3.5 H=40 ID=a7', data: { temp: -3.5, hum: 40, id: 'a7' } },
      { ok: false, reason: 'no_match', error: 'does not match the pattern', line: 'T=x H=1 ID=b' },
    ]);
    expect(parse({ ...p, numbers: false }, 'T=1 H=2 ID=c\n')[0]).toMatchObject({ data: { temp: '1', hum: '2', id: 'c' } });
  });

  it('keyvalue: pairs with configurable separators; a pair without a key is malformed', () => {
    expect(parse({ type: 'keyvalue' }, 't=21.5, h=40,state=ok\n')[0]).toEqual({
      ok: true,
      line: 't=21.5, h=40,state=ok',
      data: { t: 21.5, h: 40, state: 'ok' },
    });
    expect(parse({ type: 'keyvalue', pairSeparator: ' ', keyValueSeparator: ':' }, 'a:1 b:x\n')[0]).toMatchObject({ data: { a: 1, b: 'x' } });
    expect(parse({ type: 'keyvalue' }, 't=1,garbage\n=5\n')).toEqual([
      expect.objectContaining({ ok: false, error: '"garbage" is not key=value' }),
      expect.objectContaining({ ok: false }),
    ]);
  });

  it('a bad regex in a profile is refused at load', () => {
    expect(() => protocol({ type: 'regex', pattern: '(' })).toThrow(/valid regular expression/);
  });
});

describe('NMEA 0183', () => {
  it('GGA: position in signed decimal degrees, fix quality, satellites, HDOP, altitude', () => {
    const line = nmea('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,');
    const frames = parse({ type: 'nmea' }, `${line}\r\n`);
    expect(frames[0]).toMatchObject({
      ok: true,
      line,
      data: {
        talker: 'GP',
        sentence: 'GGA',
        time: '12:35:19',
        position: { lat: 48.1173, lon: 11.516667 },
        fix: { quality: 1, valid: true, satellites: 8, hdop: 0.9, altitudeM: 545.4, kind: 'gps' },
      },
    });
  });

  it('RMC: position, validity, speed in knots and km/h, course and date; south and west are negative', () => {
    const result = parseNmea(nmea('GNRMC,225446.00,A,4916.45,S,12311.12,W,000.5,054.7,191194,020.3,E,A'));
    expect(result).toMatchObject({
      ok: true,
      data: {
        talker: 'GN',
        sentence: 'RMC',
        time: '22:54:46.00',
        position: { lat: -49.274167, lon: -123.185333 },
        fix: { valid: true },
        speed: { knots: 0.5, kmh: 0.926 },
        courseDeg: 54.7,
        date: '1994-11-19',
      },
    });
  });

  it('no fix: position null, still a reading', () => {
    expect(parseNmea(nmea('GPGGA,000000,,,,,0,00,99.99,,,,,,'))).toMatchObject({ ok: true, data: { position: null, fix: { valid: false, quality: 0 } } });
    expect(parseNmea(nmea('GPRMC,000000,V,,,,,,,010125,,,N'))).toMatchObject({ ok: true, data: { position: null, fix: { valid: false }, speed: null } });
  });

  it('other sentences pass with their fields', () => {
    expect(parseNmea(nmea('GPGSV,3,1,11,03,03,111,00,04,15,270,00'))).toMatchObject({
      ok: true,
      data: { sentence: 'GSV', fields: ['3', '1', '11', '03', '03', '111', '00', '04', '15', '270', '00'] },
    });
  });

  it.each([
    ['a wrong checksum', '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48', /checksum mismatch: computed 47, sentence says 48/],
    ['no checksum', '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,', /no checksum/],
    ['no $', 'GPGGA,1*00', /does not start/],
    ['a bad checksum field', '$GPGGA,1*G1', /two hex digits/],
    ['too few GGA fields', nmea('GPGGA,123519,4807.038,N'), /needs 14/],
    ['a fix with a bad latitude', nmea('GPGGA,123519,9907.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), /no valid position/],
    ['minutes over 59', nmea('GPRMC,225446,A,4975.45,N,12311.12,W,000.5,054.7,191194,020.3,E'), /no valid position/],
    ['a bad address', nmea('gpgga,1'), /bad address/],
  ])('refuses %s', (_name, line, error) => {
    const result = parseNmea(line);
    expect(result.ok).toBe(false);
    expect((result as { error: string }).error).toMatch(error);
  });

  it('a sentence without checksum passes when the profile allows it', () => {
    expect(parse({ type: 'nmea', requireChecksum: false }, '$GPGSA,A,3,04,05\n')[0]).toMatchObject({ ok: true, data: { sentence: 'GSA' } });
  });
});
