import { fromCallback } from 'xstate';
import type { HistoryEvent } from '../../../machines/monitor.js';
import { toFailure } from '../../../machines/shared/types.js';
import type { Closing } from '../../closing.js';
import type { Logger } from '../../log.js';
import { History, type HistoryLimits } from '../../monitor/history.js';
import { HistoryWriter } from '../../monitor/history-writer.js';
import type { Slot } from '../../slot.js';

export interface HistoryStorePorts {
  /** the SQLite file, in stateDir */
  file: string;
  limits: HistoryLimits;
  /** where the open history is shared for reading (the API) */
  history: Slot<History>;
  /** and for writing (the sampler and the collector): a thread of its own */
  writer: Slot<HistoryWriter>;
  /** how often retention runs */
  pruneEveryMs: number;
  closing: Closing;
  now: () => number;
  log: Logger;
}

/**
 * The `historyStore` actor: starts the history's writer thread (which opens the file), opens
 * a read connection for the API, applies retention on a timer, and closes both when the
 * monitor stops. A file that cannot be opened or pruned, or a writer thread that dies, is
 * reported as `history.failed`, which the chart shows as `broken` and retries.
 */
export function historyStoreActor(ports: HistoryStorePorts) {
  return fromCallback<HistoryEvent, void>(({ sendBack }) => {
    let stopped = false;
    let writer: HistoryWriter | undefined;
    let reader: History | undefined;
    let timer: NodeJS.Timeout | undefined;
    const failed = (error: unknown, code: string) => {
      if (stopped) return;
      ports.log.error({ file: ports.file, err: String(error) }, code === 'history_open' ? 'cannot open the metric history' : 'the metric history failed');
      sendBack({ type: 'history.failed', error: toFailure(error, code) });
    };
    const prune = () =>
      writer!.prune(ports.now()).then(
        ({ deleted, usedBytes }) => {
          if (deleted > 0) ports.log.debug({ deleted, usedBytes }, 'history pruned');
          if (!stopped) sendBack({ type: 'history.pruned', deleted, usedBytes });
        },
        (error) => failed(error, 'history_prune'),
      );
    const opening = HistoryWriter.start(ports.file, ports.limits, (error) => failed(error, 'history_writer'))
      .then(async (started) => {
        writer = started;
        if (stopped) return;
        reader = History.openReader(ports.file, ports.limits);
        const opened = await started.prune(ports.now());
        if (stopped) return;
        ports.history.set(reader);
        ports.writer.set(started);
        sendBack({ type: 'history.opened', devices: reader.deviceList().length, usedBytes: opened.usedBytes });
        timer = setInterval(prune, ports.pruneEveryMs);
        timer.unref();
      })
      .catch((error) => failed(error, 'history_open'));
    return () => {
      stopped = true;
      clearInterval(timer);
      const closed = opening.then(async () => {
        if (reader) ports.history.clear(reader), reader.close();
        if (writer) ports.writer.clear(writer), await writer.close();
      });
      ports.closing.track('metric history', closed);
    };
  });
}
