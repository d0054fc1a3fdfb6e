import { describe, expect, it } from 'vitest';
import { filtersOverlap, mayConnect, mayPublish, maySubscribe, reservedFor } from '../../../src/broker/policy.js';

const reserved = reservedFor('pump-7', 'pump-7');

describe('embedded broker policy', () => {
  it("gives the agent's client id to the agent alone, and the agent's user that id alone", () => {
    expect(mayConnect('agent', 'pump-7', reserved)).toBe(true);
    expect(mayConnect('agent', 'other', reserved)).toBe(false);
    for (const role of ['user', 'anonymous', 'jobsService'] as const) {
      expect(mayConnect(role, 'pump-7', reserved)).toBe(false);
      expect(mayConnect(role, 'app-1', reserved)).toBe(true);
    }
  });

  it.each([
    ['$aws/things/pump-7/jobs/notify-next', false, true],
    ['$aws/things/pump-7/jobs/job-1/update/accepted', false, true],
    ['$aws/things/pump-7/shadow/update', false, false],
    ['devices/pump-7/status', false, false],
    ['$SYS/broker/x', false, false],
    ['devices/pump-7/monitoring', true, true],
    ['$aws/things/pump-8/jobs/notify-next', true, true],
    ['sensors/a', true, true],
  ])('publish to %s: user %s, jobs service %s; the agent always', (topic, user, service) => {
    expect(mayPublish('user', topic, reserved)).toBe(user);
    expect(mayPublish('anonymous', topic, reserved)).toBe(user);
    expect(mayPublish('jobsService', topic, reserved)).toBe(service);
    expect(mayPublish('agent', topic, reserved)).toBe(true);
  });

  it.each([
    ['$aws/things/pump-7/jobs/notify-next', false],
    ['$aws/things/+/jobs/#', false],
    ['$aws/#', false],
    ['$aws/things/pump-7', false],
    ['#', true], // a leading wildcard never matches a $ topic
    ['+/things/pump-7/jobs/notify-next', true],
    ['$aws/things/pump-8/#', true],
    ['devices/pump-7/status', true],
    ['devices/#', true],
  ])('subscribe to %s: a user %s', (filter, allowed) => {
    expect(maySubscribe('user', filter, reserved)).toBe(allowed);
    expect(maySubscribe('agent', filter, reserved)).toBe(true);
    expect(maySubscribe('jobsService', filter, reserved)).toBe(true);
  });

  it('finds overlapping filters level by level', () => {
    expect(filtersOverlap('a/+/c', 'a/b/#')).toBe(true);
    expect(filtersOverlap('a/b', 'a/b/c')).toBe(false);
    expect(filtersOverlap('a/b/#', 'a/b')).toBe(true);
    expect(filtersOverlap('a/x/c', 'a/y/c')).toBe(false);
  });
});
