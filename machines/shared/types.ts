/** What a chart keeps of a failure: plain data, never an Error object. */
export interface Failure {
  code: string;
  message: string;
}

/** The output of a concern that cannot do its job at all (a port in use, say):
 * the supervisor treats it as fatal and the process exits with this reason. */
export interface ConcernOutput {
  fatal?: string;
  /** why a concern that ended on its own ended (shown as its crash) */
  error?: Failure | null;
}

export function toFailure(error: unknown, fallbackCode = 'error'): Failure {
  if (error && typeof error === 'object') {
    const { code, message } = error as { code?: unknown; message?: unknown };
    return {
      code: typeof code === 'string' || typeof code === 'number' ? String(code) : fallbackCode,
      message: typeof message === 'string' ? message : String(error),
    };
  }
  return { code: fallbackCode, message: String(error) };
}
