/** NMEA 0183: checksum verification and the two sentences a position comes from (GGA, RMC). */

/** Why a sentence is refused, as a code from a fixed set (a metrics label): the checksum is
 * missing, or wrong, or the sentence is malformed otherwise. */
export type NmeaRejection = 'no_checksum' | 'bad_checksum' | 'bad_sentence';
export type NmeaResult = { ok: true; data: NmeaReading } | { ok: false; reason: NmeaRejection; error: string };

const bad = (error: string, reason: NmeaRejection = 'bad_sentence') => ({ ok: false, reason, error }) as const;

export interface NmeaReading {
  talker: string;
  sentence: string;
  fields: string[];
  /** GGA and RMC only */
  position?: { lat: number; lon: number } | null;
  time?: string | null;
  date?: string | null;
  fix?: { quality: number; valid: boolean; satellites: number | null; hdop: number | null; altitudeM: number | null } | { valid: boolean };
  speed?: { knots: number; kmh: number } | null;
  courseDeg?: number | null;
}

const FIX_QUALITY = 'invalid gps dgps pps rtk floatRtk estimated manual simulation'.split(' ');

export function parseNmea(line: string, requireChecksum = true): NmeaResult {
  if (line[0] !== '$' && line[0] !== '!') return bad('does not start with $ or !');
  const star = line.lastIndexOf('*');
  let body: string;
  if (star === -1) {
    if (requireChecksum) return bad('no checksum', 'no_checksum');
    body = line.slice(1);
  } else {
    body = line.slice(1, star);
    const given = line.slice(star + 1);
    if (!/^[0-9A-Fa-f]{2}$/.test(given)) return bad('checksum is not two hex digits', 'bad_checksum');
    let sum = 0;
    for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
    if (sum !== parseInt(given, 16))
      return bad(`checksum mismatch: computed ${sum.toString(16).toUpperCase().padStart(2, '0')}, sentence says ${given.toUpperCase()}`, 'bad_checksum');
  }
  if (!/^[\x20-\x7e]*$/.test(body)) return bad('non-printable characters');
  const fields = body.split(',');
  const address = fields.shift()!;
  if (!/^[A-Z0-9]{3,6}$/.test(address)) return bad(`bad address field "${address}"`);
  const proprietary = address.startsWith('P');
  const talker = proprietary ? 'P' : address.slice(0, 2);
  const sentence = proprietary ? address.slice(1) : address.slice(2);
  const data: NmeaReading = { talker, sentence, fields };
  if (sentence === 'GGA') {
    if (fields.length < 14) return bad(`GGA has ${fields.length} fields, needs 14`);
    const quality = intOrNull(fields[5]) ?? 0;
    data.time = timeOf(fields[0]);
    data.position = quality > 0 ? positionOf(fields[1], fields[2], fields[3], fields[4]) : null;
    data.fix = { quality, valid: quality > 0, satellites: intOrNull(fields[6]), hdop: numOrNull(fields[7]), altitudeM: numOrNull(fields[8]) };
    if (quality > 0 && !data.position) return bad('GGA with a fix but no valid position');
    (data.fix as { kind?: string }).kind = FIX_QUALITY[quality] ?? 'unknown';
  } else if (sentence === 'RMC') {
    if (fields.length < 9) return bad(`RMC has ${fields.length} fields, needs at least 9`);
    const valid = fields[1] === 'A';
    data.time = timeOf(fields[0]);
    data.position = valid ? positionOf(fields[2], fields[3], fields[4], fields[5]) : null;
    data.fix = { valid };
    const knots = numOrNull(fields[6]);
    data.speed = knots === null ? null : { knots, kmh: Math.round(knots * 1.852 * 1000) / 1000 };
    data.courseDeg = numOrNull(fields[7]);
    data.date = dateOf(fields[8]);
    if (valid && !data.position) return bad('RMC marked valid but no valid position');
  }
  return { ok: true, data };
}

/** ddmm.mmmm + N/S, dddmm.mmmm + E/W → signed decimal degrees (6 decimals, ~0.1 m). */
function positionOf(lat: string, ns: string, lon: string, ew: string): { lat: number; lon: number } | null {
  const a = degrees(lat, 2, 90);
  const b = degrees(lon, 3, 180);
  if (a === null || b === null || !'NS'.includes(ns) || !'EW'.includes(ew) || !ns || !ew) return null;
  return { lat: ns === 'S' ? -a : a, lon: ew === 'W' ? -b : b };
}

function degrees(text: string, degreeDigits: number, max: number): number | null {
  if (!new RegExp(`^\\d{${degreeDigits}}\\d{2}(\\.\\d+)?$`).test(text)) return null;
  const value = Number(text.slice(0, degreeDigits)) + Number(text.slice(degreeDigits)) / 60;
  if (value > max || Number(text.slice(degreeDigits)) >= 60) return null;
  return Math.round(value * 1e6) / 1e6;
}

/** ddmmyy; two-digit years from 80 are 19xx (GPS began in 1980), the rest 20xx. */
function dateOf(text: string): string | null {
  if (!/^\d{6}$/.test(text)) return null;
  const yy = Number(text.slice(4, 6));
  return `${yy >= 80 ? 1900 + yy : 2000 + yy}-${text.slice(2, 4)}-${text.slice(0, 2)}`;
}

function timeOf(text: string): string | null {
  const m = /^(\d{2})(\d{2})(\d{2}(?:\.\d+)?)$/.exec(text);
  return m ? `${m[1]}:${m[2]}:${m[3]}` : null;
}

const numOrNull = (s: string | undefined) => (s && /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : null);
const intOrNull = (s: string | undefined) => (s && /^\d+$/.test(s) ? Number(s) : null);
