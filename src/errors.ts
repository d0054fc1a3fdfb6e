/** Failures the API maps to status codes in one place. */
export type AppErrorCode = 'bad_request' | 'unauthorized' | 'not_found' | 'unavailable';

export class AppError extends Error {
  constructor(
    readonly code: AppErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

export const statusOf: Record<AppErrorCode, 400 | 401 | 404 | 503> = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  unavailable: 503,
};
