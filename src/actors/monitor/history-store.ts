import { fromCallback } from 'xstate';
import type { HistoryEvent } from '../../../machines/monitor.js';
import { toFailure } from '../../../machines/shared/types.js';
import type { Logger } from '../../log.js';
import { History, type HistoryLimits } from '../../monitor/history.js';
import type { Slot } from '../../slot.js';

export interface HistoryStorePorts {
  /** the SQLite file, in stateDir */
  file: string;
  limits: HistoryLimits;
  /** where the open history is shared with the sampler, the collector and the API */
  history: Slot<History>;
  /** how often retention runs */
  pruneEveryMs: number;
  now: () => number;
  log: Logger;
}

/**
 * The `historyStore` actor: opens the metric history, applies retention on a timer, and
 * closes it when the monitor stops. A file that cannot be opened or pruned is reported as
 * `history.failed`, which the chart shows as `broken` and retries.
 */
export function historyStoreActor(ports: HistoryStorePorts) {
  return fromCallback<HistoryEvent, void>(({ sendBack }) => {
    let history: History;
    try {
      history = History.open(ports.file, ports.limits);
    } catch (error) {
      ports.log.error({ file: ports.file, err: String(error) }, 'cannot open the metric history');
      sendBack({ type: 'history.failed', error: toFailure(error, 'history_open') });
      return () => {};
    }
    const prune = () => {
      try {
        const { deleted, usedBytes } = history.prune(ports.now());
        if (deleted > 0) ports.log.debug({ deleted, usedBytes }, 'history pruned');
        sendBack({ type: 'history.pruned', deleted, usedBytes });
      } catch (error) {
        ports.log.error({ err: String(error) }, 'history retention failed');
        sendBack({ type: 'history.failed', error: toFailure(error, 'history_prune') });
      }
    };
    ports.history.set(history);
    const opened = history.prune(ports.now());
    sendBack({ type: 'history.opened', devices: history.deviceList().length, usedBytes: opened.usedBytes });
    const timer = setInterval(prune, ports.pruneEveryMs);
    timer.unref();
    return () => {
      clearInterval(timer);
      ports.history.clear(history);
      history.close();
    };
  });
}
