/**
 * The leading instance's side of a relay (see `relay.ts`). A streamed flight led with the lock is offered from the
 * start (`relay_wants.ts`: nothing is sent to Redis until another instance asks). Once asked, and once the
 * upstream answered, it reads the stream as another reader of its `Broadcast`, from the first byte, at the upstream's pace
 * (not its own clients'), and appends what it read to the relay: one append in flight at a time, whatever
 * arrived meanwhile going in the next one, so a slow Redis makes bigger entries, not a queue of commands.
 * Nothing here can fail the leader's own clients: a relay that cannot be written stops, and its readers end
 * with an error event once they hear nothing more.
 */

import type { Store } from "../store/store.ts";
import type { Broadcast } from "./broadcast.ts";
import {
  CLOSED,
  HEARTBEAT_MS,
  PENDING,
  PENDING_MS,
  RELAY_TTL_MS,
  type RelayHead,
  relayPointer,
  relayStream,
} from "./relay.ts";
import { lockKey } from "./coalesce.ts";
import { relayWants } from "./relay_wants.ts";
import { joinBytes } from "../util/bytes.ts";
import { startTimer, type Timer } from "../util/timer.ts";

export interface RelayOptions {
  readonly store: Store;
  /** The cache key of the flight. */
  readonly key: string;
  /** Most bytes the relay keeps (`cache_params.max_entry_bytes`). */
  readonly maxBytes: number;
  /** The coalescing lock this instance holds for the flight: kept alive while the flight runs. */
  readonly lock?: { readonly token: string; readonly ttlMs: number };
}

/** A streamed flight this process leads, offered to other instances until it is withdrawn. */
export interface RelayOffer {
  /** The flight's answer is this broadcast: relay it if asked (or asked already). */
  attach(broadcast: Broadcast, head: RelayHead): void;
  /** No more relays start (the flight is over). */
  withdraw(): void;
}

/**
 * Offers the flight for `key` from now on; see the module comment. Asked before the upstream answered, it says
 * so (the pointer reads `pending`, for `PENDING_MS`, said again while it waits): a follower that sees that go
 * without a relay knows this instance died, and goes upstream itself instead of waiting out the lock. The lock
 * is kept alive until the flight is over, so a stream longer than the lock's TTL can still be followed.
 */
export function offerRelay(options: RelayOptions): RelayOffer {
  const { store, key, lock } = options;
  const keep = lock && startTimer(lock.ttlMs / 3, () => {
    store.extendIfEquals?.(lockKey(key), lock.token, lock.ttlMs).catch(() => {});
  }, { repeat: true });
  let attached: { broadcast: Broadcast; head: RelayHead } | undefined;
  let wanted = false;
  let over = false;
  let pending: Timer | undefined;
  const say = () => void store.set(relayPointer(key), PENDING, PENDING_MS).catch(() => {});
  const start = () => {
    if (over) return;
    if (attached) {
      over = true; // one relay per flight; the lock is still kept alive until the flight is over
      unregister();
      pending?.cancel();
      void relay({ ...options, ...attached }).catch(() => {});
    } else if (pending === undefined) {
      say();
      pending = startTimer(PENDING_MS / 3, say, { repeat: true });
    }
  };
  const unregister = relayWants(store).offer(key, () => {
    wanted = true;
    start();
  });
  const withdraw = () => {
    over = true;
    unregister();
    pending?.cancel();
    if (keep) keep.cancel();
  };
  return {
    attach(broadcast, head) {
      attached = { broadcast, head };
      broadcast.ended.then(withdraw);
      if (wanted) start();
    },
    withdraw,
  };
}

interface Relay extends RelayOptions {
  readonly broadcast: Broadcast;
  readonly head: RelayHead;
}

async function relay(offer: Relay): Promise<void> {
  const { store, key, broadcast } = offer;
  const stream = broadcast.join();
  if (!stream) {
    // Past what is kept for late joiners: followers make their own upstream call.
    await store.set(relayPointer(key), CLOSED, RELAY_TTL_MS);
    return;
  }
  const id = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  const writer = new RelayWriter(store, relayStream(key, id), offer.maxBytes);
  const reader = stream.getReader();
  try {
    await writer.append({ n: "0", m: JSON.stringify(offer.head) });
    await store.set(relayPointer(key), id, RELAY_TTL_MS);
    const heartbeat = startTimer(HEARTBEAT_MS, () => {
      writer.beat();
      // The pointer lives as long as the relay (the lock does too): a request minutes into a long stream finds it.
      store.extendIfEquals?.(relayPointer(key), id, RELAY_TTL_MS).catch(() => {});
    }, { repeat: true });
    try {
      while (!writer.failed) {
        const { done, value } = await reader.read();
        if (done) break;
        writer.push(value);
      }
    } finally {
      heartbeat.cancel();
    }
    await writer.end(writer.failed ? "cut" : "done");
  } catch {
    await writer.end("cut").catch(() => {});
  } finally {
    reader.cancel().catch(() => {});
    await store.deleteIfEquals(relayPointer(key), id).catch(() => {});
  }
}

/** Appends to one relay stream in order, batching while an append is in flight, trimming to `maxBytes`. */
class RelayWriter {
  readonly #store: Store;
  readonly #key: string;
  readonly #maxBytes: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #flushing: Promise<void> | null = null;
  #next = 1;
  /** The entries with bytes still in the relay, oldest first, and their total. */
  #kept: { id: string; bytes: number }[] = [];
  #keptBytes = 0;
  #lastWrite = 0;
  #beat = false;
  failed = false;

  constructor(store: Store, key: string, maxBytes: number) {
    this.#store = store;
    this.#key = key;
    this.#maxBytes = maxBytes;
  }

  push(chunk: Uint8Array): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
    // Redis takes less than the stream brings: stop rather than hold the difference.
    if (this.#pendingBytes > this.#maxBytes) this.failed = true;
    else this.#kick();
  }

  /** A heartbeat, when nothing else was written for a while. */
  beat(): void {
    if (performance.now() - this.#lastWrite < HEARTBEAT_MS / 2) return;
    this.#beat = true;
    this.#kick();
  }

  async end(how: "done" | "cut"): Promise<void> {
    while (this.#flushing) await this.#flushing;
    await this.append({ e: how });
  }

  async append(fields: Record<string, string>, data?: Uint8Array): Promise<void> {
    const bytes = data?.byteLength ?? 0;
    let drop = 0;
    let keptBytes = this.#keptBytes + bytes;
    while (drop < this.#kept.length && keptBytes > this.#maxBytes) keptBytes -= this.#kept[drop++].bytes;
    const trimBefore = drop === 0
      ? undefined
      : drop < this.#kept.length
      ? this.#kept[drop].id
      : after(this.#kept[drop - 1].id);
    const id = await this.#store.appendToRelay!(this.#key, { fields, data, trimBefore }, RELAY_TTL_MS);
    this.#lastWrite = performance.now();
    if (drop > 0) this.#kept = this.#kept.slice(drop);
    this.#keptBytes = keptBytes;
    if (bytes > 0) this.#kept.push({ id, bytes });
  }

  #kick(): void {
    this.#flushing ??= this.#flush().finally(() => this.#flushing = null);
  }

  /** Appends what is pending (or a heartbeat) until nothing is; a failed append stops the relay. */
  async #flush(): Promise<void> {
    try {
      while (!this.failed && (this.#pending.length > 0 || this.#beat)) {
        if (this.#pending.length === 0) {
          this.#beat = false;
          await this.append({ h: "1" });
          continue;
        }
        const data = this.#pending.length === 1
          ? this.#pending[0]
          : joinBytes(this.#pending, this.#pendingBytes);
        this.#pending = [];
        this.#pendingBytes = 0;
        await this.append({ n: String(this.#next++) }, data);
      }
    } catch {
      this.failed = true;
    }
  }
}

/** The stream entry id right after `id` (`ms-seq`): trimming before it drops `id` itself. */
function after(id: string): string {
  const [ms, seq] = id.split("-");
  return `${ms}-${Number(seq) + 1}`;
}
