import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { freePort, waitFor } from '../support/ports.js';
import { terminate } from '../support/processes.js';

/** What an operator sees of the process itself: its logs, its exit, its listeners, its figures. */
describe('the agent process, as an operator sees it', () => {
  let agent: AgentProcess | undefined;
  afterEach(async () => {
    await terminate(agent?.child);
    agent = undefined;
  });

  const embeddedOnFreePorts = async () => ({ mqtt: { url: 'embedded', embeddedPort: await freePort() }, http: { host: '127.0.0.1', port: await freePort() } });

  it('logs stopping and stopped with a namespace, like every other line', async () => {
    const config = await embeddedOnFreePorts();
    agent = runAgent({ config });
    await waitForHealth(`http://127.0.0.1:${config.http.port}`, 200);
    await terminate(agent.child);
    const last = agent.logs.filter((line) => line.msg === 'stopping' || line.msg === 'stopped');
    expect(last.map((line) => line.msg)).toEqual(['stopping', 'stopped']);
    for (const line of last) expect(line.ns).toBe('agent');
  });

  it('names the stateDir key when the state directory cannot be used, and exits 1', async () => {
    const config = await embeddedOnFreePorts();
    const notADirectory = join(tmpdir(), `edgevisor-file-${process.pid}`);
    writeFileSync(notADirectory, 'a file, not a directory');
    agent = runAgent({ config, stateDir: notADirectory });
    const { code } = await agent.exited;
    rmSync(notADirectory);
    expect(code).toBe(1);
    expect(agent.stderr()).toMatch(/stateDir ".*edgevisor-file-\d+" cannot be used: EEXIST/);
  });

  it('says what to do when the embedded broker port is taken (Debian mosquitto on 1883), and exits 1', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as AddressInfo).port;
    try {
      agent = runAgent({ config: { mqtt: { url: 'embedded', embeddedPort: port }, http: { host: '127.0.0.1', port: await freePort() } } });
      const { code } = await agent.exited;
      expect(code).toBe(1);
      expect(agent.stderr()).toContain(`cannot listen on 127.0.0.1:${port}: already in use`);
      expect(agent.stderr()).toContain(`mqtt.url "mqtt://127.0.0.1:${port}"`);
    } finally {
      taken.close();
    }
  });

  it('counts the CPU the process used before the first scrape in process_cpu_seconds_total', async () => {
    const config = await embeddedOnFreePorts();
    agent = runAgent({ config });
    const base = `http://127.0.0.1:${config.http.port}`;
    await waitForHealth(base, 200);
    const body = await (await fetch(`${base}/metrics`)).text();
    const fields = readFileSync(`/proc/${agent.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const usedSeconds = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ
    const counted = Number(/^process_cpu_seconds_total (\S+)$/m.exec(body)?.[1]);
    // start-up alone costs a few hundred ms of CPU; the old counter started at the first scrape
    expect(usedSeconds).toBeGreaterThan(0.1);
    expect(counted).toBeGreaterThan(usedSeconds * 0.8);
  });

  it('binds the statechart inspector relay to loopback unless told otherwise', async () => {
    const config = await embeddedOnFreePorts();
    const inspectPort = await freePort();
    agent = runAgent({ config, args: ['--inspect'], env: { EDGEVISOR_INSPECT_PORT: String(inspectPort) } });
    await waitFor(() => agent!.logs.find((line) => line.msg === 'statechart inspector relay started (development only)'), 'inspector relay');
    expect(listenersOn(inspectPort)).toEqual(['127.0.0.1']);
    // a frame over the relay's 1 MiB is refused: the connection is closed with 1009
    const socket = new WebSocket(`ws://127.0.0.1:${inspectPort}`);
    await once(socket, 'open');
    socket.send(Buffer.alloc(2 * 1024 * 1024));
    const [code] = await once(socket, 'close');
    expect(code).toBe(1009);
  });
});

/** The local addresses listening on a TCP port, from /proc/net/tcp and tcp6. */
function listenersOn(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const listening = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols[3] === '0A' && cols[1]?.endsWith(`:${hexPort}`))
      .map((cols) => cols[1]!.split(':')[0]!);
  const v4 = listening('/proc/net/tcp').map((hex) =>
    hex
      .match(/../g)!
      .reverse()
      .map((b) => parseInt(b, 16))
      .join('.'),
  );
  const v6 = listening('/proc/net/tcp6').map((hex) => (/^0+$/.test(hex) ? '::' : hex));
  return [...v4, ...v6];
}
