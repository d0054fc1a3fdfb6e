import { describe, expect, it } from 'vitest';
import { checkCommand } from '../../../src/devices/commands.js';
import { loadProfiles, ProfileSchema, shippedProfilesDir } from '../../../src/devices/profiles.js';

const commandsOf = (commands: Record<string, unknown> | undefined) => ProfileSchema.parse({ commands }).commands;

describe('commands against a profile allowlist', () => {
  it('adds the line ending and counts it in maxBytes', () => {
    expect(checkCommand(commandsOf({ lineEnding: 'crlf', maxBytes: 8 }), 'LED ON')).toEqual({ ok: true, data: 'LED ON\r\n', bytes: 8 });
    expect(checkCommand(commandsOf({ lineEnding: 'crlf', maxBytes: 8 }), 'LED OFF')).toMatchObject({
      ok: false,
      reason: 'too_large',
      message: 'the command is 9 bytes with its line ending; the profile allows 8',
    });
    expect(checkCommand(commandsOf({ lineEnding: 'none' }), Buffer.from('°C'))).toEqual({ ok: true, data: '°C', bytes: 3 });
  });

  it('refuses a device without commands, bad text, and what the pattern does not allow (whole match)', () => {
    expect(checkCommand(undefined, 'x')).toMatchObject({ ok: false, reason: 'not_writable' });
    const c = commandsOf({ pattern: 'LED (ON|OFF)' });
    expect(checkCommand(c, 'LED ON')).toMatchObject({ ok: true });
    expect(checkCommand(c, 'LED ONX')).toMatchObject({ ok: false, reason: 'not_allowed' });
    expect(checkCommand(c, 'xLED ON')).toMatchObject({ ok: false, reason: 'not_allowed' });
    expect(checkCommand(commandsOf({}), 'a\nb')).toMatchObject({ ok: false, reason: 'bad_command' });
    expect(checkCommand(commandsOf({}), '')).toMatchObject({ ok: false, reason: 'bad_command' });
    expect(checkCommand(commandsOf({}), Buffer.from([0x41, 0xff]))).toMatchObject({
      ok: false,
      reason: 'bad_command',
      message: 'the command is not valid UTF-8',
    });
    expect(checkCommand(commandsOf({}), 'a\uD800')).toMatchObject({ ok: false, reason: 'bad_command' });
    expect(checkCommand(commandsOf({}), Buffer.alloc(1_000_000, 0x41))).toMatchObject({ ok: false, reason: 'too_large' });
  });

  it('the schema refuses a bad commands section; the shipped Arduino and GPS profiles take commands', async () => {
    expect(ProfileSchema.safeParse({ commands: { lineEnding: 'lf\n' } }).success).toBe(false);
    expect(ProfileSchema.safeParse({ commands: { maxBytes: 0 } }).success).toBe(false);
    expect(ProfileSchema.safeParse({ commands: { pattern: '(' } }).success).toBe(false);
    expect(ProfileSchema.safeParse({ commands: { extra: 1 } }).success).toBe(false);
    const { profiles } = await loadProfiles(shippedProfilesDir);
    expect(profiles.get('arduino-uno')!.commands).toEqual({ maxBytes: 128, lineEnding: 'lf', maxPerSecond: 10, timeoutMs: 2000 });
    const gps = profiles.get('ublox-gps')!.commands;
    expect(checkCommand(gps, '$PUBX,40,GSV,0,0,0,0*59')).toEqual({ ok: true, data: '$PUBX,40,GSV,0,0,0,0*59\r\n', bytes: 25 });
    expect(checkCommand(gps, '$GPGGA,1')).toMatchObject({ ok: false, reason: 'not_allowed' });
    expect(profiles.get('ftdi-ft232r')!.commands).toBeUndefined();
  });
});
