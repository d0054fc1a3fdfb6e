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
  },
});
if (!values['job-id'] || !values.document) {
  console.error('usage: submit-job --job-id ID --document FILE [--thing NAME] [--broker URL]');
  process.exit(2);
}
const client = await mqtt.connectAsync(values.broker!);
const document = JSON.parse(readFileSync(values.document, 'utf8'));
await client.publishAsync(`${CONTROL_PREFIX}/create`, JSON.stringify({ thingName: values.thing, jobId: values['job-id'], document }), { qos: 1 });
await client.endAsync();
console.log(`queued ${values['job-id']} for ${values.thing}`);
