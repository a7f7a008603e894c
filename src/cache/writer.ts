/**
 * Storing answers: only complete successes, off the response path, never fatal. A JSON answer is checked and
 * written as it is handed back (nothing waits for a write to Redis); a stream is written by its recorder once it
 * ended after its terminal event. A write that fails (store down, value refused) is counted and logged at warn;
 * the client never notices. A write not done at once (Redis) is tracked, so shutdown can wait for it.
 */

import type { Answer, AnswerBody } from "../core/answer.ts";
import type { Clock } from "../core/clock.ts";
import type { GenerationRequest } from "../core/request.ts";
import type { Settings } from "../config/config.ts";
import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";
import type { EntryPlace } from "./ticket.ts";
import { utf8Length } from "../store/lru.ts";
import { type CachedAnswer, encodeEntry, entryKey, entryMeta } from "./entry.ts";
import { recordStream } from "./record.ts";
import { startsWithBom } from "../util/bytes.ts";

/** What the cache did since this instance started (kept across config reloads). */
export interface CacheCounters {
  hits: number;
  misses: number;
  bypasses: number;
  coalesced: number;
  writes: number;
  write_failures: number;
  /** `DELETE /cache`s: an answer whose request looked up before the last one is not stored. */
  clears: number;
}

export const newCounters = (): CacheCounters => ({
  hits: 0,
  misses: 0,
  bypasses: 0,
  coalesced: 0,
  writes: 0,
  write_failures: 0,
  clears: 0,
});

export interface WriterOptions {
  readonly store: Store;
  readonly settings: Settings;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly counters: CacheCounters;
  /** Writes still running to keep tracking (a config reload's previous writer's), so shutdown waits for all. */
  readonly writes?: Set<Promise<unknown>>;
}

/** A coalescing lock this instance holds: its store key and this instance's token. */
export interface HeldLock {
  readonly key: string;
  readonly token: string;
}

/** A whole JSON answer from an upstream, parsed. */
export type JsonBody = Extract<AnswerBody, { kind: "json" }>;

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export class EntryWriter {
  readonly #options: WriterOptions;
  readonly #writes: Set<Promise<unknown>>;

  constructor(options: WriterOptions) {
    this.#options = options;
    this.#writes = options.writes ?? new Set();
  }

  /** The writes still running, for the writer of the next config to take over. */
  get writes(): Set<Promise<unknown>> {
    return this.#writes;
  }

  /**
   * Stores a JSON answer if it is a complete one; `done` runs once that is settled either way. With `lock` (the
   * coalescing lock this instance holds), the entry's write releases it in the same step; `done` is told whether
   * that happened, so the caller releases it otherwise.
   */
  json(
    place: EntryPlace,
    answer: Answer,
    body: JsonBody,
    done?: (lockReleased: boolean) => void,
    lock?: HeldLock,
  ): void {
    const { request } = place;
    const { settings, clock } = this.#options;
    let write: boolean | Promise<boolean> = false;
    if (body.bytes.byteLength > settings.cacheMaxEntryBytes) this.#tooLarge(request);
    else if (isComplete(body)) {
      write = this.#write(
        place,
        {
          stream: false,
          contentType: answer.headers["content-type"] ?? "application/json",
          endpoint: answer.meta.endpoint,
          body: body.text,
          events: [],
          storedAt: clock.now(),
        },
        lock,
        utf8Size(body),
      );
    }
    this.#then(write, done);
  }

  /**
   * A streamed answer's `body` passed through its recorder: stored once complete. `done` runs once the stream
   * ended and its write (if any) settled, told whether the write released `lock`; not when it is cancelled or cut
   * before its terminal event.
   */
  stream(
    body: ReadableStream<Uint8Array>,
    place: EntryPlace,
    answer: Answer,
    done?: (lockReleased: boolean) => void,
    lock?: HeldLock,
  ): ReadableStream<Uint8Array> {
    const { settings, clock, logger } = this.#options;
    const { request } = place;
    return recordStream(body, {
      route: request.route,
      maxBytes: settings.cacheMaxEntryBytes,
      onComplete: (recording) => {
        const write = this.#write(
          place,
          {
            stream: true,
            contentType: answer.headers["content-type"] ?? "text/event-stream",
            endpoint: answer.meta.endpoint,
            body: concatenated(recording.events),
            events: recording.events.map((event) => event.length),
            storedAt: clock.now(),
          },
          lock,
          recording.textBytes,
        );
        this.#then(write, done);
      },
      onIncomplete: (reason) => {
        if (reason === "too_large") this.#tooLarge(request);
        else logger.debug("streamed answer not cached", { request_id: request.requestId, reason });
        done?.(false);
      },
    });
  }

  /** Runs `work` (e.g. releasing a lock) as a tracked write. */
  track(work: Promise<void>): void {
    this.#track(work);
  }

  /** Waits for the writes still running (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.#writes.size > 0) await Promise.all([...this.#writes]);
  }

  /** Runs `done` once `write` settled: at once when it is done already, else as a tracked write. */
  #then(write: boolean | Promise<boolean>, done?: (lockReleased: boolean) => void): void {
    if (write instanceof Promise) this.#track(done ? write.then(done) : write);
    else done?.(write);
  }

  /**
   * Writes the entry (releasing `lock` in the same step when given); true when the lock was dealt with. A store in
   * this process with no lock to release writes at once: no promise. `bodyBytes`: the UTF-8 size of the answer's
   * body when known (a JSON answer's bytes, a stream's recorded text), handed on so the store does not scan the entry.
   */
  #write(
    place: EntryPlace,
    answer: CachedAnswer,
    lock?: HeldLock,
    bodyBytes?: number,
  ): boolean | Promise<boolean> {
    const { store, settings, counters, logger } = this.#options;
    const { key, request, control } = place;
    // The cache was cleared since this request looked up: its answer may be what the clear meant to drop.
    if (place.clears !== counters.clears) {
      logger.debug("answer not cached: the cache was cleared while it was made", {
        request_id: request.requestId,
      });
      return false;
    }
    const ttlMs = (control.ttlSeconds ?? settings.cacheTtlSeconds) * 1000;
    if (lock || !store.setNow) {
      return this.#writeLater(entryKey(key), encodeEntry(answer), ttlMs, request, lock);
    }
    try {
      const meta = entryMeta(answer);
      const bytes = bodyBytes === undefined ? undefined : utf8Length(meta) + 1 + bodyBytes;
      store.setNow(entryKey(key), encodeEntry(answer, meta), ttlMs, bytes);
      counters.writes++;
    } catch (error) {
      this.#failed(request, error);
    }
    return false;
  }

  async #writeLater(
    key: string,
    value: string,
    ttlMs: number,
    request: GenerationRequest,
    lock?: HeldLock,
  ): Promise<boolean> {
    try {
      if (lock) await this.#options.store.setAndUnlock(key, value, ttlMs, lock.key, lock.token);
      else await this.#options.store.set(key, value, ttlMs);
      this.#options.counters.writes++;
      return lock !== undefined;
    } catch (error) {
      this.#failed(request, error);
      return false;
    }
  }

  #failed(request: GenerationRequest, error: unknown): void {
    this.#options.counters.write_failures++;
    this.#options.logger.warn("cache write failed; the answer was served but not cached", {
      request_id: request.requestId,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  #tooLarge(request: GenerationRequest): void {
    this.#options.logger.warn("answer not cached: larger than cache_params.max_entry_bytes", {
      request_id: request.requestId,
      max_entry_bytes: this.#options.settings.cacheMaxEntryBytes,
    });
  }

  #track(work: Promise<unknown>): void {
    this.#writes.add(work);
    work.finally(() => this.#writes.delete(work));
  }
}

/**
 * Whether a JSON answer is worth storing: an object with something in it and no `error`, whose text is exactly
 * its bytes (a replay must be byte-identical, so bytes that are not valid UTF-8 are not stored). A Responses
 * object counts only once `completed`: a background one that is still queued, or one that failed or is
 * incomplete, is not an answer to hand out again (as for streams).
 */
function isComplete(answer: JsonBody): boolean {
  const value = answer.parsed as Record<string, unknown> | null;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  if (Object.keys(value).length === 0 || ("error" in value && value.error)) return false;
  if (value.object === "response" && value.status !== "completed") return false;
  if (!answer.text.includes("\uFFFD")) return true;
  try {
    strictDecoder.decode(answer.bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * The events as one string without copying them: the runtime links the pieces (a rope) and copies them into one
 * run only when the text is first read whole (a hit's replay), so a stream written and never read again costs no
 * copy of its ~14 KB (`Array.join` makes one at once).
 */
function concatenated(events: readonly string[]): string {
  let text = "";
  for (const event of events) text += event;
  return text;
}

/**
 * The UTF-8 size of a complete JSON answer's text: its bytes, less a leading byte-order mark (the decoder drops
 * it from the text). A complete answer's bytes are valid UTF-8 (`isComplete`), so its text encodes back to them.
 */
function utf8Size(body: JsonBody): number {
  const { bytes } = body;
  return startsWithBom(bytes) ? bytes.byteLength - 3 : bytes.byteLength;
}
