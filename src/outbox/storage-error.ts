/** Why the outbox cannot write: the disk (or quota) is full, or it failed otherwise. */
export type StorageErrorCode = 'disk_full' | 'disk_error';

const fullCodes = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/** A write or sync of the outbox log that did not complete: nothing in it was acknowledged. */
export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }

  static from(error: unknown, doing: string): StorageError {
    if (error instanceof StorageError) return error;
    const sysCode = (error as { code?: unknown })?.code;
    const detail = error instanceof Error ? error.message : String(error);
    const code: StorageErrorCode = typeof sysCode === 'string' && fullCodes.has(sysCode) ? 'disk_full' : 'disk_error';
    return new StorageError(code, `${doing}: ${detail}`, { cause: error });
  }
}
