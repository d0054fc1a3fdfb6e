/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs. Written here because a
 * fresh Debian box has no cpio tool, and because it lets every entry be owned by root and a
 * /dev/console node be made without being root or running fakeroot.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

export type Entry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode?: number; source?: string; data?: Buffer | string }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; mode?: number; major: number; minor: number };

/** Writes the entries (parents first, as the kernel needs them) to one archive file. */
export function writeCpio(file: string, entries: Entry[]): void {
  const fd = openSync(file, 'w');
  let offset = 0;
  let ino = 1;
  const write = (buffer: Buffer) => {
    writeSync(fd, buffer);
    offset += buffer.length;
  };
  const pad = () => {
    if (offset % 4) write(Buffer.alloc(4 - (offset % 4)));
  };
  const record = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]) => {
    const fields = [ino++, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], Buffer.byteLength(name) + 1, 0];
    write(Buffer.from(`070701${fields.map((n) => n.toString(16).padStart(8, '0')).join('')}${name}\0`));
    pad();
    write(data);
    pad();
  };
  try {
    for (const entry of entries) {
      const name = entry.path.replace(/^\/+/, '');
      switch (entry.type) {
        case 'dir':
          record(name, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0));
          break;
        case 'file': {
          const data = entry.data !== undefined ? Buffer.from(entry.data) : readFileSync(entry.source!);
          record(name, S_IFREG | (entry.mode ?? 0o644), data);
          break;
        }
        case 'symlink':
          record(name, S_IFLNK | 0o777, Buffer.from(entry.target));
          break;
        case 'char':
          record(name, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), [entry.major, entry.minor]);
          break;
      }
    }
    record('TRAILER!!!', 0, Buffer.alloc(0));
  } finally {
    closeSync(fd);
  }
}
