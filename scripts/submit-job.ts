/** Submits a job document file to the local jobs service (scripts/jobs-service.ts). */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { CONTROL_PREFIX } from './jobs-service.js';

const { values } = parseArgs({
  options: {
    broker: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    thing: { type: 'string', default: 'edgevisor' },
    'job-id': { type: 'string' },
    document: { type: 'string' },
    'in-progress-timeout': { type: 'string' },
  },
});
if (!values['job-id'] || !values.document) {
  console.error('usage: submit-job --job-id ID --document FILE [--thing NAME] [--broker URL] [--in-progress-timeout MINUTES]');
  process.exit(2);
}
const minutes = values['in-progress-timeout'] === undefined ? undefined : Number(values['in-progress-timeout']);
if (minutes !== undefined && !(Number.isInteger(minutes) && minutes >= 1 && minutes <= 10_080)) {
  console.error('--in-progress-timeout must be a whole number of minutes, 1 to 10080');
  process.exit(2);
}
const client = await mqtt.connectAsync(values.broker!);
const document = JSON.parse(readFileSync(values.document, 'utf8'));
const timeoutConfig = minutes === undefined ? undefined : { inProgressTimeoutInMinutes: minutes };
await client.publishAsync(`${CONTROL_PREFIX}/create`, JSON.stringify({ thingName: values.thing, jobId: values['job-id'], document, timeoutConfig }), {
  qos: 1,
});
await client.endAsync();
console.log(`queued ${values['job-id']} for ${values.thing}`);
