/**
 * Lets a message through at most once per `everyMs` for each key (a device that keeps sending
 * bad samples is logged once a minute, and counted every time). At most `maxKeys` are
 * remembered, so a flood of distinct device ids cannot grow it without bound.
 */
export class LogOnce {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly everyMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number,
  ) {}

  allows(key: string): boolean {
    const now = this.now();
    if (now - (this.last.get(key) ?? Number.NEGATIVE_INFINITY) < this.everyMs) return false;
    if (this.last.size >= this.maxKeys) this.last.clear();
    this.last.set(key, now);
    return true;
  }
}
