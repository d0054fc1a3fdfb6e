import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LogOptions {
  level: LogLevel;
  /** per-namespace levels: {"link": "debug"} */
  levels?: Record<string, LogLevel>;
}

/**
 * JSON lines on stdout, one object per line: {"t","level","ns","msg",…fields}.
 * `forConcern(root, 'link')` gives a namespaced child whose level may differ.
 */
export function createLogger(options: LogOptions, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level: options.level,
      base: undefined,
      messageKey: 'msg',
      timestamp: () => `,"t":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
  levelsByLogger.set(logger, options.levels ?? {});
  return logger;
}

const levelsByLogger = new WeakMap<Logger, Record<string, LogLevel>>();

export function forConcern(root: Logger, ns: string): Logger {
  const level = levelsByLogger.get(root)?.[ns];
  return root.child({ ns }, level ? { level } : undefined);
}
