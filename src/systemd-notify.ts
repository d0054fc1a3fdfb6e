import { execFile } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AnyActorRef } from 'xstate';
import { phaseOf, type Phase } from './http/views.js';
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
  let sending = false;
  let wanted: string[] | undefined;
  let ready = false;
  let phase: Phase = 'starting';
  // One systemd-notify at a time; what is asked meanwhile is sent next (the newest status wins).
  const send = (assignments: string[]) => {
    if (sending) return void (wanted = [...new Set([...(wanted ?? []), ...assignments])].filter((a) => !a.startsWith('STATUS=') && a !== 'READY=1'));
    sending = true;
    execFile('systemd-notify', assignments, { timeout: 10_000 }, (error) => {
      sending = false;
      if (error) log.debug({ err: error.message, assignments }, 'systemd-notify failed');
      const next = wanted;
      wanted = undefined;
      if (next) send([...next, ...(next.includes('STOPPING=1') ? [] : status())]);
    });
  };
  const status = () => {
    phase = phaseOf(root);
    ready ||= phase === 'running' || phase === 'degraded';
    return [`STATUS=${phase}`, ...(ready ? ['READY=1'] : [])];
  };
  const subscription = root.subscribe(() => {
    if (phaseOf(root) !== phase) send(status());
  });
  send(status()); // the tree may have moved before this was called

  const delay = monitorEventLoopDelay({ resolution: 20 });
  let timer: NodeJS.Timeout | undefined;
  if (pingMs > 0) {
    delay.enable();
    timer = setInterval(() => {
      const blockedMs = delay.max / 1e6;
      delay.reset();
      // A loop blocked for most of the period is not healthy: let systemd's watchdog act.
      if (blockedMs < pingMs) send(['WATCHDOG=1', ...status()]);
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
      wanted = undefined;
      sending = false;
      send(['STOPPING=1']); // at once, beside any call still waiting on its barrier
    },
  };
}
