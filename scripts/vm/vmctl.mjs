// The test's hand inside the systemd VM (a unit of its own, as root): POST {"command", "input",
// "timeoutMs"} runs `sh -c command` and answers {"code", "signal", "stdout", "stderr"}. It is
// reached through a qemu port forward from the host's loopback; the VM is the test's own.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';

const PORT = 7777;
const MAX_OUTPUT = 1 << 20; // bytes kept of each stream

createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    let order;
    try {
      order = JSON.parse(body);
    } catch (error) {
      response.writeHead(400).end(`${error.message}\n`);
      return;
    }
    const child = spawn('/bin/sh', ['-c', order.command], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    for (const name of ['stdout', 'stderr']) {
      child[name].on('data', (chunk) => {
        if (out[name].length < MAX_OUTPUT) out[name] += chunk.toString();
      });
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), order.timeoutMs ?? 60_000);
    child.on('error', (error) => (out.stderr += error.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code, signal, ...out }));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(order.input ?? '');
  });
}).listen(PORT, '0.0.0.0', () => console.log(`vmctl: listening on ${PORT}`));
