/**
 * Structured JSON logs, one object per line on stderr. Callers pass fields, never secrets: keys, bodies and
 * upstream URLs with credentials are not logged at any level.
 *
 * Writing is cheap on the hot path: lines are batched and written together a few milliseconds later (or at once
 * when the batch grows large, or for `warn` and `error`). `flush()` writes what is pending; the CLI calls it before
 * exiting.
 */

import { startTimer, type Timer } from "./util/timer.ts";
import { isoTime } from "./util/iso_time.ts";

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
  /** Writes any batched lines now. */
  flush(): void;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Where lines go, one call per line, synchronously; default: batched writes to stderr. */
  readonly write?: (line: string) => void;
  readonly now?: () => number;
}

/** Lines wait at most this long before they are written. */
const FLUSH_DELAY_MS = 10;
/** A batch this large (in UTF-16 code units) is written at once. */
const FLUSH_SIZE = 64 * 1024;

const encoder = new TextEncoder();

/** Writes all of `bytes` to stderr (a pipe may take fewer at a time); drops them when stderr is gone. */
function writeAllStderr(bytes: Uint8Array): void {
  try {
    let written = 0;
    while (written < bytes.byteLength) written += Deno.stderr.writeSync(bytes.subarray(written));
  } catch {
    // stderr closed: nothing sensible to do with a log line
  }
}

/** Batches lines for stderr: one write per batch instead of one per line. */
export class BatchedStderr {
  #lines: string[] = [];
  #size = 0;
  #timer: Timer | undefined;

  write(line: string, urgent = false): void {
    this.#lines.push(line);
    this.#size += line.length + 1;
    if (urgent || this.#size >= FLUSH_SIZE) this.flush();
    else this.#timer ??= startTimer(FLUSH_DELAY_MS, () => this.flush());
  }

  flush(): void {
    if (this.#timer !== undefined) {
      this.#timer.cancel();
      this.#timer = undefined;
    }
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    this.#size = 0;
    writeAllStderr(encoder.encode(text));
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const threshold = RANK[level];
  const batched = options.write ? undefined : new BatchedStderr();
  if (batched) globalThis.addEventListener("unload", () => batched.flush());
  const write: (line: string, lineLevel: LogLevel) => void = options.write ?? ((line, lineLevel) => {
    batched!.write(line, lineLevel === "warn" || lineLevel === "error");
  });
  const now = options.now ?? Date.now;
  const log = (lineLevel: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (RANK[lineLevel] < threshold) return;
    const record: Record<string, unknown> = {
      time: isoTime(now()),
      level: lineLevel,
      msg: message,
    };
    if (fields) {
      for (const key in fields) {
        const value = fields[key];
        record[key] = value instanceof Error ? value.message : value;
      }
    }
    write(JSON.stringify(record), lineLevel);
  };
  return {
    level,
    enabled: (lineLevel) => RANK[lineLevel] >= threshold,
    log,
    debug: (message, fields) => log("debug", message, fields),
    info: (message, fields) => log("info", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    error: (message, fields) => log("error", message, fields),
    flush: () => batched?.flush(),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });
