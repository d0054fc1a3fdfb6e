import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { FakeSlack } from '../support/fake-slack.js';
import { Mosquitto } from '../support/mosquitto.js';
import { subscriber } from '../support/mqtt.js';
import { freePort, waitFor } from '../support/ports.js';
import { terminate } from '../support/processes.js';

/** Alerts in the agent process: the monitor's own samples, the alert actors, Slack and MQTT notices, /metrics. */
describe('alerts in the agent process', () => {
  let broker: Mosquitto;
  let slack: FakeSlack;
  let agent: AgentProcess;
  let base: string;
  const thingName = `alerting-${process.pid}`;

  beforeAll(async () => {
    broker = await Mosquitto.start();
    slack = await FakeSlack.start();
    base = `http://127.0.0.1:${await freePort()}`;
  });
  afterAll(async () => {
    await terminate(agent?.child);
    await slack.close();
    await broker.stop();
  });

  it('fires a rule on the host sample, tells Slack and MQTT once, and shows it on /api/v1/state and /metrics', async () => {
    const notices = await subscriber(broker.url, `devices/${thingName}/alerts`);
    agent = runAgent({
      config: {
        thingName,
        mqtt: { url: broker.url, reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.4 },
        http: { host: '127.0.0.1', port: Number(new URL(base).port) },
        monitor: {
          enabled: true,
          intervalSeconds: 0.5,
          slackWebhookUrl: slack.url,
          // uptime is always above 1 s: this rule fires on the first samples and stays firing
          alerts: [{ id: 'up', metric: 'uptime-seconds', op: '>', threshold: 1, forSeconds: 1, severity: 'info' }],
        },
      },
    });
    await waitForHealth(base, 200, 20_000);
    await waitFor(() => (slack.taken.length > 0 && notices.messages.length > 0) || undefined, 'a firing notice on Slack and MQTT', 20_000);
    expect(slack.taken[0]!.text).toMatch(/FIRING \[info\] up on /);
    const notice = JSON.parse(notices.messages[0]!.payload);
    expect(notice).toMatchObject({ kind: 'firing', rule: 'up', device: thingName, metric: 'uptime-seconds', threshold: 1 });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^edgevisor_alerts_firing 1$/m);
    const state = JSON.stringify(await (await fetch(`${base}/api/v1/state`)).json());
    expect(state).toContain(`alert:up:${thingName}`);

    // firing goes on, and no further notice is sent for it
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(slack.taken).toHaveLength(1);
    expect(notices.messages).toHaveLength(1);
    await notices.close();
  });
});
