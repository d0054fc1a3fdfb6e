import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { listenerMachine } from '../../machines/listener.js';
import { fakeCallback } from '../support/fakes.js';

function start() {
  const server = fakeCallback();
  const actor = createActor(listenerMachine.provide({ actors: { server: server.logic } }), {
    input: { name: 'http', host: '127.0.0.1', port: 8080 },
  });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  return { actor, server, errors };
}

describe('listener machine', () => {
  it('is healthy once listening, with the bound address', () => {
    const { actor, server } = start();
    expect(actor.getSnapshot().value).toBe('starting');
    server.current.sendBack({ type: 'server.listening', host: '127.0.0.1', port: 40123 });
    expect(actor.getSnapshot().value).toBe('listening');
    expect(actor.getSnapshot().hasTag('healthy')).toBe(true);
    expect(actor.getSnapshot().context.port).toBe(40123);
  });

  it('cannot listen: ends failed with a fatal reason naming the address', () => {
    const { actor, server, errors } = start();
    server.current.sendBack({ type: 'server.failed', error: { code: 'EADDRINUSE', message: 'address already in use' } });
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toEqual({ fatal: 'http: cannot listen on 127.0.0.1:8080: address already in use' });
    expect(server.liveCount).toBe(0);
    expect(errors).toEqual([]);
  });

  it('breaking after it listened ends crashed, without a fatal reason, so it is restarted', () => {
    const { actor, server } = start();
    server.current.sendBack({ type: 'server.listening', host: '127.0.0.1', port: 8080 });
    server.current.sendBack({ type: 'server.failed', error: { code: 'EMFILE', message: 'too many open files' } });
    expect(actor.getSnapshot().value).toBe('crashed');
    expect(actor.getSnapshot().output).toEqual({});
  });
});
