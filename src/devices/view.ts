import type { AnyActorRef } from 'xstate';
import { deviceStateName, type DeviceContext } from '../../machines/device.js';
import type { DevicesContext } from '../../machines/devices.js';
import type { WriteRefusal } from '../../machines/device.js';
import type { DeviceHub, Rejection } from './hub.js';
import type { FrameRejection } from './protocols.js';
import type { KnownDevice } from './known.js';

export interface DeviceRow {
  id: string;
  present: boolean;
  path: string;
  profile: string | null;
  /** the device chart's state; "unmatched" (present, no profile), the record's outcome, or "known" (seen before this start) */
  state: string;
  source?: string;
  vendorId?: string;
  productId?: string;
  serial?: string;
  product?: string;
  manufacturer?: string;
  /** why its id is not the usual one (e.g. a serial number two adapters share) */
  note?: string;
  since?: number;
  lastSeen?: number;
  counters: {
    frames: number;
    bytes: number;
    /** rejected frames, all reasons */
    errors: number;
    reconnects: number;
    dropped: number;
    /** rejected frames by reason code */
    rejected: Partial<Record<FrameRejection, number>>;
    writes: number;
    writesRefused: Partial<Record<WriteRefusal, number>>;
  };
  lastFrameAt: number | null;
  /** the last frame rejected: its reason code, the detail and when */
  lastRejected: Rejection | null;
  lastError: string | null;
}

export interface DevicesView {
  running: boolean;
  source: string | null;
  problem: string | null;
  devices: DeviceRow[];
}

/** Present devices (live charts and unmatched ones), then the records of those gone, newest
 * first, then devices seen before (kept across restarts), most recently seen first. */
export function devicesView(manager: AnyActorRef | undefined, hub: DeviceHub, known: readonly KnownDevice[] = []): DevicesView {
  const snap = manager?.getSnapshot() as { status: string; context: DevicesContext; children: Record<string, AnyActorRef | undefined> } | undefined;
  if (!snap || snap.status !== 'active') return { running: false, source: null, problem: null, devices: [] };
  const ctx = snap.context;
  const rows: DeviceRow[] = [];
  const counted = (id: string, reconnects: number) => {
    const c = hub.peek(id);
    return {
      counters: {
        frames: c?.frames ?? 0,
        bytes: c?.bytes ?? 0,
        errors: c?.errors ?? 0,
        reconnects,
        dropped: c?.dropped ?? 0,
        rejected: { ...c?.rejected },
        writes: c?.writes ?? 0,
        writesRefused: { ...c?.writesRefused },
      },
      lastFrameAt: c?.lastFrameAt ?? null,
      lastRejected: c?.lastRejected ?? null,
    };
  };
  for (const d of Object.values(ctx.present)) {
    const child = snap.children[`device:${d.id}`]?.getSnapshot() as { value: unknown; context: DeviceContext } | undefined;
    const record = ctx.records.find((r) => r.id === d.id);
    const state = child ? deviceStateName(child.value) : d.profile === null ? 'unmatched' : (record?.outcome ?? 'refused');
    rows.push({
      id: d.id,
      present: true,
      path: d.path,
      profile: d.profile,
      state,
      source: d.source,
      vendorId: d.vendorId,
      productId: d.productId,
      serial: d.serial,
      product: d.product,
      manufacturer: d.manufacturer,
      note: d.note,
      since: d.at,
      ...counted(d.id, child?.context.reconnects ?? 0),
      lastError: child?.context.lastError?.message ?? (state === 'refused' ? (record?.lastError?.message ?? null) : null),
    });
  }
  for (const r of [...ctx.records].reverse()) {
    if (ctx.present[r.id]) continue;
    rows.push({
      id: r.id,
      present: false,
      path: r.path,
      profile: r.profile,
      state: r.outcome,
      ...counted(r.id, r.reconnects),
      lastError: r.lastError?.message ?? null,
    });
  }
  const listed = new Set(rows.map((r) => r.id));
  for (const k of [...known].sort((a, b) => b.lastSeen - a.lastSeen)) {
    if (listed.has(k.id)) continue;
    const { firstSeen, lastSeen, ...identity } = k;
    rows.push({ ...identity, present: false, state: 'known', since: firstSeen, lastSeen, ...counted(k.id, 0), lastError: null });
  }
  return { running: true, source: ctx.source, problem: ctx.problem, devices: rows };
}
