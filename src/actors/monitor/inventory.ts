import { fromCallback } from 'xstate';
import type { InventoryEvent } from '../../../machines/monitor.js';
import type { Logger } from '../../log.js';
import type { HistoryWriter } from '../../monitor/history-writer.js';
import type { Inventory } from '../../monitor/inventory.js';
import type { Outbox } from '../../outbox/queue.js';
import type { Slot } from '../../slot.js';

export interface InventoryPorts {
  thingName: string;
  /** <prefix>/<thingName>/inventory */
  topic: string;
  /** read again this often */
  everyMs: number;
  /** one systeminformation call at most (no udev, a hung lsblk): that part is then left out */
  callTimeoutMs: number;
  read: (callTimeoutMs: number, now: number) => Promise<Inventory>;
  writer: Slot<HistoryWriter>;
  outbox: Slot<Outbox>;
  now: () => number;
  log: Logger;
}

/**
 * The `inventory` actor: reads this host's inventory at start and then every `everyMs` (never
 * on the sample path), keeps it in the history (GET /api/v1/monitor/devices/<id>/inventory)
 * and publishes it retained through the outbox, so a collector or a dashboard that subscribes
 * later still gets the latest. A read that fails is a problem shown on the chart, and is
 * tried again at the next interval.
 */
export function inventoryActor(ports: InventoryPorts) {
  return fromCallback<InventoryEvent, void>(({ sendBack }) => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const once = async () => {
      const inventory: Inventory = { ...(await ports.read(ports.callTimeoutMs, ports.now())), device: ports.thingName };
      if (stopped) return;
      const writer = ports.writer.current;
      if (!writer) throw new Error('the metric history is not open');
      await writer.putInventory(ports.thingName, inventory);
      const outbox = ports.outbox.current;
      if (!outbox) throw new Error('the outbox is not open: the inventory is kept here, published at the next read');
      await outbox.enqueue({ topic: ports.topic, payload: Buffer.from(JSON.stringify(inventory)), qos: 1, retain: true });
      if (inventory.problems.length > 0) ports.log.info({ problems: inventory.problems }, 'inventory read without some parts');
      sendBack({ type: 'inventory.read', at: inventory.ts, problems: inventory.problems });
    };
    const run = () =>
      once()
        .catch((error) => {
          ports.log.warn({ err: String(error) }, 'inventory not read');
          if (!stopped) sendBack({ type: 'inventory.read', at: null, problems: [`inventory: ${String((error as Error)?.message ?? error).slice(0, 400)}`] });
        })
        .finally(() => {
          if (stopped) return;
          timer = setTimeout(run, ports.everyMs);
          timer.unref();
        });
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  });
}
