import { open, type FileHandle } from 'node:fs/promises';

/** Bytes a file may have at most (a /proc file grows with cores and mounts; this is far over). */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Reads small kernel files (/proc, /sys) again and again through handles kept open: each read
 * is one positional read from offset 0 (procfs and sysfs generate the text afresh at offset
 * 0), one trip to the threadpool instead of the five of readFile (open, fstat, read, read,
 * close), so a sample costs the event loop fewer and shorter callbacks. A file that fails is
 * closed and opened again on the next read. At most `maxHandles` stay open; others are read
 * whole each time.
 */
export class FileReader {
  private readonly handles = new Map<string, { handle: Promise<FileHandle>; buffer: Buffer }>();

  constructor(private readonly maxHandles = 128) {}

  /** The file's text, or undefined when it cannot be read. */
  async read(path: string): Promise<string | undefined> {
    let entry = this.handles.get(path);
    if (!entry) {
      if (this.handles.size >= this.maxHandles) return this.readOnce(path);
      entry = { handle: open(path, 'r'), buffer: Buffer.allocUnsafe(4096) };
      this.handles.set(path, entry);
    }
    try {
      const handle = await entry.handle;
      for (;;) {
        const { bytesRead } = await handle.read(entry.buffer, 0, entry.buffer.length, 0);
        if (bytesRead < entry.buffer.length) return entry.buffer.toString('utf8', 0, bytesRead);
        if (entry.buffer.length >= MAX_FILE_BYTES) return undefined;
        entry.buffer = Buffer.allocUnsafe(entry.buffer.length * 2); // it may not have fit: read again, whole
      }
    } catch {
      this.forget(path);
      return undefined;
    }
  }

  private async readOnce(path: string): Promise<string | undefined> {
    const reader = new FileReader(1);
    try {
      return await reader.read(path);
    } finally {
      reader.close();
    }
  }

  /** Closes the handle of a file no longer read (a sensor gone). */
  forget(path: string): void {
    const entry = this.handles.get(path);
    this.handles.delete(path);
    void entry?.handle.then((h) => h.close()).catch(() => {});
  }

  /** Keeps only the handles of `paths`. */
  keepOnly(paths: Iterable<string>): void {
    const keep = new Set(paths);
    for (const path of [...this.handles.keys()]) if (!keep.has(path)) this.forget(path);
  }

  close(): void {
    for (const path of [...this.handles.keys()]) this.forget(path);
  }
}
