import { execFile } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AnyActorRef } from 'xstate';
import { phaseOf, type Phase } from './views.js';
import type { Logger } from './log.js';

/**
 * Type=notify for systemd: READY=1 once the tree runs, STATUS= on every phase change, and
 * WATCHDOG=1 every WatchdogSec/2 while the event loop is healthy. Node cannot send on a unix
 * datagram socket, so the messages go through systemd's own `systemd-notify`, which waits on a
 * barrier until systemd has read them (so a message is never lost to the sender having exited).
 */
export function startSystemdNotify(env: NodeJS.ProcessEnv, root: AnyActorRef, log: Logger) {
  if (!env.NOTIFY_SOCKET) return undefined;
  const pingMs = Number(env.WATCHDOG_USEC) / 2000;
  let ready = false;
  let phase: Phase = 'starting';
  const notify = (assignments: string[], done = () => {}) =>
    execFile('systemd-notify', assignments, { timeout: 10_000 }, (error) => {
      if (error) log.debug({ err: error.message, assignments }, 'systemd-notify failed');
      done();
    });
  // One systemd-notify at a time; what is asked meanwhile goes with the next call, with the
  // status as it is then. READY=1 is repeated with every message once the tree ran.
  let sending = false;
  let again = false;
  let watchdogDue = false;
  const flush = () => {
    if (sending) return void (again = true);
    sending = true;
    again = false;
    phase = phaseOf(root);
    ready ||= phase === 'running' || phase === 'degraded';
    const assignments = [...(watchdogDue ? ['WATCHDOG=1'] : []), `STATUS=${phase}`, ...(ready ? ['READY=1'] : [])];
    watchdogDue = false;
    notify(assignments, () => {
      sending = false;
      if (again) flush();
    });
  };
  const subscription = root.subscribe(() => {
    if (phaseOf(root) !== phase) flush();
  });
  flush(); // the tree may have moved before this was called

  const delay = monitorEventLoopDelay({ resolution: 20 });
  let timer: NodeJS.Timeout | undefined;
  if (pingMs > 0) {
    delay.enable();
    timer = setInterval(() => {
      const blockedMs = delay.max / 1e6;
      delay.reset();
      // A loop blocked for most of the period is not healthy: let systemd's watchdog act.
      if (blockedMs < pingMs) (watchdogDue = true), flush();
      else log.warn({ blockedMs: Math.round(blockedMs), pingMs }, 'event loop blocked: watchdog ping withheld');
    }, pingMs);
    timer.unref();
  }
  log.info({ watchdogMs: pingMs > 0 ? pingMs * 2 : null }, 'systemd notification on');
  return {
    stop() {
      subscription.unsubscribe();
      if (timer) clearInterval(timer);
      delay.disable();
      again = false;
      notify(['STOPPING=1']); // at once, beside any call still waiting on its barrier
    },
  };
}
