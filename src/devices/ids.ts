/** A device seen in one scan that needs an id: what it would like, and what it falls back to. */
export interface IdCandidate {
  /** the same for the same device while it stays plugged in (source and path) */
  key: string;
  /** the id it gets when nothing else claims it (the serial-number id for USB) */
  wanted: string;
  /** tried in order when `wanted` is shared or taken (the USB port's bus path first) */
  fallbacks: string[];
  /** only USB ids are built from a serial number that another adapter may repeat */
  repeatable: boolean;
}

export interface AssignedId {
  id: string;
  /** why the id is not the wanted one; undefined when it is */
  note?: string;
}

/**
 * Gives every candidate its own id. Two adapters sharing a serial number (cheap CP2102 and
 * CH340 boards often do) both fall back to the bus-path id, the same on every start while
 * they stay in the same USB ports. A device keeps the id it already has while it is present
 * (plugging a twin in later does not rename the first); `previous` maps key to that id.
 * Candidates are served in order (config ports first), so a fixed id in config always wins.
 */
export function assignIds(candidates: IdCandidate[], previous: ReadonlyMap<string, string>): Map<string, AssignedId> {
  const wantedBy = new Map<string, number>();
  for (const c of candidates) if (c.repeatable) wantedBy.set(c.wanted, (wantedBy.get(c.wanted) ?? 0) + 1);
  const taken = new Set<string>();
  const result = new Map<string, AssignedId>();
  // Ids held from an earlier scan are claimed first, so nobody new takes them.
  for (const c of candidates) {
    const held = previous.get(c.key);
    if (held !== undefined && !taken.has(held) && (held === c.wanted || c.fallbacks.includes(held))) {
      taken.add(held);
      result.set(c.key, { id: held, note: held === c.wanted ? undefined : noteFor(c, held, wantedBy) });
    }
  }
  for (const c of candidates) {
    if (result.has(c.key)) continue;
    const shared = c.repeatable && (wantedBy.get(c.wanted) ?? 0) > 1;
    const options = shared ? c.fallbacks : [c.wanted, ...c.fallbacks];
    let id = options.find((o) => !taken.has(o));
    for (let n = 2; id === undefined; n++) if (!taken.has(`${c.wanted}-${n}`)) id = `${c.wanted}-${n}`;
    taken.add(id);
    result.set(c.key, { id, note: id === c.wanted ? undefined : noteFor(c, id, wantedBy) });
  }
  return result;
}

function noteFor(c: IdCandidate, id: string, wantedBy: ReadonlyMap<string, number>): string {
  if (c.repeatable && (wantedBy.get(c.wanted) ?? 0) > 1)
    return `id ${c.wanted} (from the serial number) is shared by ${wantedBy.get(c.wanted)} devices: ${id} is from the USB port`;
  return `id ${c.wanted} is already used by another device: this one is ${id}`;
}
