/**
 * Structured JSON logs, one object per line on stderr. Callers pass fields, never secrets: keys, bodies and
 * upstream URLs with credentials are not logged at any level.
 *
 * Writing is cheap on the hot path: lines are batched and written together a few milliseconds later (or at once
 * when the batch grows large, or for `warn` and `error`). A batched line is also only formatted then (its time
 * and its JSON), so a request's access-log line costs its answer the copy of its fields, not their serialization
 * (~15-45 us an answer waited for before its head went out). `flush()` writes what is pending; the CLI calls it
 * before exiting.
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
/** A batch of this many lines (an access-log line is ~300 characters) is written at once. */
const FLUSH_LINES = 256;

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

/**
 * A log line not written yet: its fields, with `time` still the clock's milliseconds. It is formatted when its batch
 * is written: its fields are copied when it is logged, so a caller may reuse its own object at once (a nested
 * object is written as it is at the flush).
 */
export type LogRecord = Record<string, unknown> & { time: number | string };

/**
 * The line of a record: the time formatted, then the whole record as JSON. A field JSON cannot write (a BigInt, a
 * cycle) leaves a line that says so: a batched line is formatted in the flush's timer, where a throw would end the
 * process.
 */
function formatted(record: LogRecord): string {
  if (typeof record.time === "number") record.time = isoTime(record.time);
  try {
    return JSON.stringify(record);
  } catch (error) {
    const { time, level, msg } = record;
    return JSON.stringify({
      time,
      level,
      msg,
      log_error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Batches lines for stderr: one write per batch instead of one per line, each line formatted then. */
export class BatchedStderr {
  #records: LogRecord[] = [];
  #timer: Timer | undefined;

  write(record: LogRecord, urgent = false): void {
    this.#records.push(record);
    if (urgent || this.#records.length >= FLUSH_LINES) this.flush();
    else this.#timer ??= startTimer(FLUSH_DELAY_MS, () => this.flush());
  }

  flush(): void {
    if (this.#timer !== undefined) {
      this.#timer.cancel();
      this.#timer = undefined;
    }
    const records = this.#records;
    if (records.length === 0) return;
    this.#records = [];
    let text = "";
    for (let i = 0; i < records.length; i++) text += formatted(records[i]) + "\n";
    writeAllStderr(encoder.encode(text));
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const threshold = RANK[level];
  const sink = options.write;
  const batched = sink ? undefined : new BatchedStderr();
  if (batched) globalThis.addEventListener("unload", () => batched.flush());
  const now = options.now ?? Date.now;
  const log = (lineLevel: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (RANK[lineLevel] < threshold) return;
    const record: LogRecord = { time: now(), level: lineLevel, msg: message };
    if (fields) {
      for (const key in fields) {
        const value = fields[key];
        record[key] = value instanceof Error ? value.message : value;
      }
    }
    // A sink of the caller's own (tests) takes each line as it is logged.
    if (sink) sink(formatted(record));
    else batched!.write(record, lineLevel === "warn" || lineLevel === "error");
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
