/**
 * Structured JSON logs, one object per line on stderr. Callers pass fields, never secrets: keys, bodies and
 * upstream URLs with credentials are not logged at any level.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Where lines go; default: stderr. */
  readonly write?: (line: string) => void;
  readonly now?: () => number;
}

const encoder = new TextEncoder();
const writeStderr = (line: string) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const threshold = RANK[level];
  const write = options.write ?? writeStderr;
  const now = options.now ?? Date.now;
  const log = (lineLevel: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (RANK[lineLevel] < threshold) return;
    const record: Record<string, unknown> = { time: new Date(now()).toISOString(), level: lineLevel, msg: message };
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        record[key] = value instanceof Error ? value.message : value;
      }
    }
    write(JSON.stringify(record));
  };
  return {
    level,
    enabled: (lineLevel) => RANK[lineLevel] >= threshold,
    log,
    debug: (message, fields) => log("debug", message, fields),
    info: (message, fields) => log("info", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    error: (message, fields) => log("error", message, fields),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });
