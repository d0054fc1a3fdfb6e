import type { AnyActorRef } from 'xstate';
import { concerns, type Concern, type SupervisorContext } from '../machines/supervisor.js';
import type { Logger } from './log.js';

type Region = 'checking' | 'disabled' | 'up' | 'restarting' | 'gaveUp';

/**
 * Logs what the supervisor does to its concerns, read from its snapshots (the chart does
 * no I/O): every crash with its reason and the backoff, every restart, and a give-up with
 * when the agent will exit for it.
 */
export function watchRestarts(supervisor: AnyActorRef, log: Logger): void {
  let last: Partial<Record<Concern, Region>> = {};
  supervisor.subscribe({
    next: (snapshot) => {
      const value = snapshot.value as { running?: Partial<Record<Concern, Region>> } | string;
      if (typeof value !== 'object' || !value.running) return;
      const context = snapshot.context as SupervisorContext;
      for (const name of concerns) {
        const now = value.running[name];
        if (now && now !== last[name]) logChange(log, name, last[name], now, context);
      }
      last = value.running;
    },
    error: () => {},
  });
}

function logChange(log: Logger, concern: Concern, before: Region | undefined, now: Region, context: SupervisorContext): void {
  const crash = context.lastCrash[concern];
  const restarts = context.restarts[concern];
  if (now === 'restarting') log.warn({ concern, crash, restarts, retryInMs: context.retryInMs[concern] }, 'concern crashed; restarting it');
  else if (now === 'up' && before === 'restarting') log.info({ concern, restarts }, 'concern restarted');
  else if (now === 'gaveUp') {
    const exitInMs = context.restart.exitAfterGiveUpMs;
    log.error(
      { concern, crash, restarts, exitInMs },
      exitInMs === undefined ? 'concern gave up' : 'concern gave up; the agent exits so that it is started afresh',
    );
  }
}
