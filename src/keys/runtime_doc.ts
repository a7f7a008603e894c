/**
 * The runtime keys as the store keeps them: one document (`keys:runtime`) with a version (`keys:version`).
 * Changes take a short lock and announce the new version on the store's `keys:changed` channel (Redis pub/sub, on
 * a connection of its own); every instance reads the document again when it hears of a version it does not have,
 * after its subscription (re)connects, and when it finds a new version on its own check every 250 ms (an
 * announcement is lost when Redis hangs between the write and the publish). So a key created, changed or revoked
 * through any instance applies on every instance within a Redis round trip or two, 250 ms at most.
 *
 * With Redis, the store given here is Redis itself, never the local state that serves requests while it is away:
 * a change made there would fork this instance from the others (and vanish once Redis answers again). A change
 * while Redis does not answer is refused with a 503; the keys last read stay in force.
 */

import { ProxyError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";
import type { PolicyFields } from "./schema.ts";
import { sleep, startTimer, type Timer } from "../util/timer.ts";

const DOC = "keys:runtime";
const VERSION = "keys:version";
const LOCK = "keys:lock";
const LOCK_TTL_MS = 5_000;
const LOCK_TRIES = 100;
const LOCK_WAIT_MS = 20;
const CHANNEL = "keys:changed";
const CHECK_EVERY_MS = 250;
const OWED_MS = 60_000;
const MAX_OWED = 100;

/** One runtime key as stored: its digest and policy, never the key. */
export interface StoredKey {
  readonly name: string;
  readonly digest: string;
  readonly created: string;
  readonly policy: PolicyFields;
}

export interface RuntimeDoc {
  readonly version: string;
  readonly keys: readonly StoredKey[];
}

export class RuntimeDocStore {
  readonly #store: Store;
  readonly #logger: Logger;
  /** Called with every document read or written; the registry indexes it. */
  readonly #apply: (doc: RuntimeDoc) => void;
  #version: string | null = null;
  #unsubscribe: (() => Promise<void>) | undefined;
  #check: Timer | undefined;
  #reading: Promise<void> | null = null;
  #again = false;
  /**
   * Tokens of locks this instance may hold without knowing it (the reply to its SET, or to its release, was
   * lost): given back as soon as the store answers, on the next check or change, not left to their TTL (5 s of
   * 503 `keys_busy` for every instance). Token -> when it is forgotten: a hung Redis may run the SET when it
   * resumes, so a token is kept a minute, not just the lock's TTL; `MAX_OWED` at most.
   */
  readonly #owed = new Map<string, number>();

  constructor(store: Store, logger: Logger, apply: (doc: RuntimeDoc) => void) {
    this.#store = store;
    this.#logger = logger;
    this.#apply = apply;
  }

  /** Reads the document when another instance changed it; a store that cannot answer changes nothing. */
  async refresh(): Promise<void> {
    if (this.#store.status() !== "ok") return;
    const version = await this.#store.get(VERSION);
    if (version === null || version === this.#version) return;
    this.#take(parseDoc(await this.#store.get(DOC)));
  }

  /** Starts listening for other instances' changes (shared stores only). */
  watch(): void {
    if (this.#unsubscribe || !this.#store.subscribe) return;
    this.#unsubscribe = this.#store.subscribe(CHANNEL, (version) => {
      if (version === null || version !== this.#version) this.#reread();
    });
    // Quietly: a Redis that is away would otherwise log a warning four times a second.
    this.#check = startTimer(CHECK_EVERY_MS, () => {
      if (this.#owed.size > 0 && this.#store.status() === "ok") void this.#giveBack();
      return this.#reading ?? this.#reread(true);
    }, {
      repeat: true,
      ref: false,
    });
  }

  async close(): Promise<void> {
    this.#check?.cancel();
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await unsubscribe?.();
  }

  /**
   * Applies `edit` to the stored keys under the lock, then here at once. A store that fails or does not answer
   * (`commandTimeoutMs`, 1 s by default) refuses the change with a 503.
   */
  async change(edit: (keys: readonly StoredKey[]) => StoredKey[]): Promise<void> {
    try {
      await this.#change(edit);
    } catch (error) {
      if (error instanceof ProxyError) throw error;
      this.#logger.warn("runtime keys not changed: the store did not answer", {
        error: error instanceof Error ? error.message : "",
      });
      throw new ProxyError(
        503,
        "service_unavailable",
        "store_unavailable",
        "Runtime keys cannot be changed while the shared store (Redis) does not answer; try again once it does",
      );
    }
  }

  async #change(edit: (keys: readonly StoredKey[]) => StoredKey[]): Promise<void> {
    await this.#giveBack();
    const token = crypto.randomUUID();
    let locked = false;
    for (let i = 0; i < LOCK_TRIES && !locked; i++) {
      // A lock whose reply was lost may have been taken: given back at once (or once the store answers again)
      // rather than after its TTL.
      locked = await this.#store.setIfAbsent(LOCK, token, LOCK_TTL_MS).catch((error) => {
        this.#owe(token);
        void this.#giveBack();
        throw error;
      });
      if (!locked) await sleep(LOCK_WAIT_MS);
    }
    if (!locked) {
      throw new ProxyError(
        503,
        "service_unavailable",
        "keys_busy",
        "Runtime keys are being changed; try again",
      );
    }
    try {
      const doc = parseDoc(await this.#store.get(DOC));
      const next: RuntimeDoc = { version: crypto.randomUUID(), keys: edit(doc.keys) };
      await this.#store.set(DOC, JSON.stringify(next));
      await this.#store.set(VERSION, next.version);
      this.#take(next);
      await this.#store.publish?.(CHANNEL, next.version).catch((error) =>
        this.#logger.warn("could not announce a key change; other instances see it on their next reconnect", {
          error: error instanceof Error ? error.message : "",
        })
      );
    } finally {
      this.#owe(token);
      await this.#giveBack();
    }
  }

  #owe(token: string): void {
    if (this.#owed.size < MAX_OWED) this.#owed.set(token, Date.now() + OWED_MS);
  }

  /** Releases the owed locks; each stays owed while the store does not answer (their TTL ends them anyway). */
  async #giveBack(): Promise<void> {
    await Promise.all([...this.#owed].map(async ([token, expires]) => {
      if (expires <= Date.now()) return void this.#owed.delete(token);
      try {
        await this.#store.deleteIfEquals(LOCK, token);
        this.#owed.delete(token);
      } catch { /* still owed: the next check or change tries again */ }
    }));
  }

  #take(doc: RuntimeDoc): void {
    this.#version = doc.version;
    this.#apply(doc);
  }

  /** Reads the document again; one read at a time, and one more when asked during a read. */
  #reread(quiet = false): void {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = this.refresh().catch((error) => {
      if (quiet) return;
      this.#logger.warn("could not read runtime keys", {
        error: error instanceof Error ? error.message : "",
      });
    }).finally(() => {
      this.#reading = null;
      if (this.#again) {
        this.#again = false;
        this.#reread();
      }
    });
  }
}

function parseDoc(text: string | null): RuntimeDoc {
  if (text === null) return { version: "", keys: [] };
  try {
    const doc = JSON.parse(text) as RuntimeDoc;
    return Array.isArray(doc.keys) ? doc : { version: "", keys: [] };
  } catch {
    return { version: "", keys: [] };
  }
}
