import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inSeries } from './in-series.js';
import { keyPart } from './proc.js';

/** One temperature file and the key its value is stored under. */
export interface Sensor {
  key: string;
  file: string;
}

const readText = (file: string) =>
  readFile(file, 'utf8').then(
    (s) => s.trim(),
    () => undefined,
  );
const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

/**
 * Finds the temperature sensors under a sysfs root: thermal zones
 * (temperature-<type>-celsius) and hwmon chips (temperature-<chip>-<label or tempN>-celsius).
 * Done once and then rarely: each sample only reads the `temp` files found here.
 */
export async function findSensors(sysRoot: string, limit: number): Promise<Sensor[]> {
  const sensors: Sensor[] = [];
  const used = new Set<string>();
  const add = (base: string, file: string, suffix: string) => {
    let key = `temperature-${base}-celsius`;
    if (used.has(key)) key = `temperature-${base}-${suffix}-celsius`;
    if (used.has(key) || sensors.length >= limit) return;
    used.add(key);
    sensors.push({ key, file });
  };
  const thermal = join(sysRoot, 'class/thermal');
  for (const zone of (await list(thermal)).filter((d) => d.startsWith('thermal_zone')).sort(byNumber)) {
    const type = await readText(join(thermal, zone, 'type'));
    add(keyPart(type ?? zone), join(thermal, zone, 'temp'), zone.replace('thermal_zone', 'zone'));
  }
  const hwmon = join(sysRoot, 'class/hwmon');
  for (const chip of (await list(hwmon)).sort(byNumber)) {
    const dir = join(hwmon, chip);
    const name = keyPart((await readText(join(dir, 'name'))) ?? chip);
    for (const input of (await list(dir)).filter((f) => /^temp\d+_input$/.test(f)).sort(byNumber)) {
      const label = await readText(join(dir, input.replace('_input', '_label')));
      add(`${name}-${keyPart(label ?? input.replace('_input', ''))}`, join(dir, input), keyPart(chip));
    }
  }
  return sensors;
}

/** Reads each sensor (millidegrees Celsius in sysfs); one that fails or reads nonsense is left out. */
export async function readTemperatures(
  sensors: readonly Sensor[],
  into: Record<string, number>,
  read: (file: string) => Promise<string | undefined> = readText,
): Promise<void> {
  const values = (await inSeries(sensors, (s) => read(s.file))).map((text) => text?.trim());
  sensors.forEach((sensor, i) => {
    const milli = Number(values[i]);
    if (values[i] !== undefined && values[i] !== '' && Number.isFinite(milli) && milli > -273_150) into[sensor.key] = milli / 1000;
  });
}

function byNumber(a: string, b: string): number {
  return Number(/\d+/.exec(a)?.[0] ?? 0) - Number(/\d+/.exec(b)?.[0] ?? 0) || a.localeCompare(b);
}
