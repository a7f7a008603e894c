/**
 * Pass-throughs of a byte stream (a `TransformStream` is two streams each; a stack of these is one). `tapStream`
 * watches it without buffering: each chunk is handed on as the client pulls it, and told to `onChunk` on the way;
 * `onEnd` is told once whether the stream ran to its end (true) or was cancelled or failed (false). A client that
 * leaves cancels the source.
 *
 * A source whose chunks can be polled (`upstream/body_source.ts`: the upstream body, the SSE pass-through, these
 * pass-throughs themselves) is not pulled as a stream: the new stream polls it, and a stack of watchers is one
 * stream layer for the runtime to drain, each watcher a function call per chunk; one made over a stream that
 * nothing has read yet takes the place of its source, and makes no stream at all (`stacked`). Any other source (a
 * `fetch` answer) is read a chunk at a time into a slot that is polled the same way (`chunks.ts`, `pollReader`).
 */

import { type ChunkSource, withSource } from "../upstream/body_source.ts";
import { pollReader } from "./chunks.ts";

/** Where a stream of `pipeStream` notes its pipe (a property of its own, as `withSource` notes the source). */
const PIPE = Symbol("pipe");

type Piped = ReadableStream<Uint8Array> & { [PIPE]?: Pipe };

/**
 * A stream that hands on `source`'s chunks as the consumer wants them. Once pulled, it flows: the chunks at hand
 * are enqueued, then one `wait` is awaited, and so on while the consumer keeps up (its queue empty); it stops when
 * the consumer falls behind (a chunk left queued: at most one beyond what was asked for), and the next pull flows
 * again. While it flows the pull that started it stays pending, so the consumer's reads meanwhile call no pull of
 * their own: one pull per flow, not one per event (the runtime makes a promise and its reactions per pull: ~4 KB
 * and a scavenge in 13 per 50-event stream, issue 22.3a). A stream held open between events keeps that promise
 * (~0.5 KB; session 11 traded it the other way for the 22.4c peak, which has room since session 12). A pull that
 * comes while chunks are handed on (a consumer that reads again from within `enqueue`) starts no second round. A
 * failure `poll` throws errors the stream once the consumer has taken the chunks queued before it. Its chunks can
 * be polled in turn.
 */
export function pipeStream(source: PipeSource): ReadableStream<Uint8Array> {
  const pipe = new Pipe(source);
  const stream = new ReadableStream<Uint8Array>(pipe, { highWaterMark: 0 });
  (stream as Piped)[PIPE] = pipe;
  return withSource(stream, source);
}

/**
 * A pass-through of `stream` made by `make` from what it reads. When `stream` is a `pipeStream` that nothing has
 * read, cancelled or locked yet (the watcher below was just made), the pass-through takes the place of its source
 * and `stream` itself is handed back: a stack of watchers is then one stream, and each poll one call per watcher.
 * A stream per watcher cost a stream and its reader (~4 us to make) and a hop through that reader per poll and wait
 * (a key's streamed chat stacks three watchers: ~250 ns per event less as one stream, `bench/event_path.ts`). Nobody
 * else reads the stream meanwhile: it was the answer's, and whoever hands it on no longer holds it. Any other
 * stream is read by a reader of its own.
 */
function stacked(
  stream: ReadableStream<Uint8Array>,
  make: (below: PipeSource) => PipeSource,
): ReadableStream<Uint8Array> {
  const pipe = (stream as Piped)[PIPE];
  if (pipe === undefined || !pipe.fresh || stream.locked) return pipeStream(make(pollReader(stream)));
  const above = make(pipe.source);
  pipe.source = above;
  return withSource(stream, above);
}

/** What `pipeStream` hands on: chunks to poll, and `cancel` for a consumer that leaves. */
export interface PipeSource extends ChunkSource {
  cancel(reason?: unknown): Promise<void>;
}

/**
 * The underlying source of `pipeStream`'s stream: one object per stream, its methods shared (an open stream
 * holds it for as long as it lasts; closures would be one object each).
 */
class Pipe implements UnderlyingDefaultSource<Uint8Array> {
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #waiting = false;
  #done = false;
  /** What `poll` threw while chunks were still queued: the stream errors once the consumer has taken them. */
  #failure: { readonly error: unknown } | undefined;
  /** What `source.wait` calls back: the next round of the flow. */
  readonly #flow = () => this.#next();

  /** Not pulled nor cancelled yet: a watcher made over the stream now may take the place of `source`. */
  fresh = true;

  constructor(public source: PipeSource) {}

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller;
  }

  /** Settles the pull kept pending while the pipe flows. */
  #release: (() => void) | undefined;

  pull(): Promise<void> | undefined {
    this.fresh = false;
    if (this.#failure !== undefined) {
      this.#done = true;
      this.#controller.error(this.#failure.error);
      return;
    }
    if (!this.#waiting) this.#next();
    // Flowing (a `wait` is out): the pull stays pending until the flow stops, so the consumer's reads meanwhile
    // find a pull under way and call none (the runtime's pull is a promise and its reactions each time).
    if (this.#waiting && !this.#done) return new Promise<void>((resolve) => this.#release = resolve);
  }

  cancel(reason?: unknown): Promise<void> {
    this.fresh = false;
    this.#done = true;
    this.#settle();
    return this.source.cancel(reason);
  }

  #settle(): void {
    const release = this.#release;
    if (release === undefined) return;
    this.#release = undefined;
    release();
  }

  #next(): void {
    if (this.#done) return;
    // Busy until this round ends: a consumer that reads again from within `enqueue` (a `Response`'s `text()` does)
    // pulls meanwhile, and that pull must not start a second round (two reads of the upstream at once, into the
    // same bytes). This round reads on for it.
    this.#waiting = true;
    const controller = this.#controller;
    try {
      for (let chunk = this.source.poll(); chunk !== undefined; chunk = this.source.poll()) {
        if (chunk === null) {
          this.#done = true;
          this.#settle();
          return controller.close();
        }
        controller.enqueue(chunk);
        // Queued, not taken: poll no further until the consumer pulls again, so a consumer behind (a broadcast's
        // follower) leaves its backlog with the source, which bounds it, instead of taking it all in one round.
        if (controller.desiredSize! < 0) break;
      }
    } catch (error) {
      this.#settle();
      // Erroring the stream would drop the chunks still queued (a reader behind, given a backlog in one round).
      if (controller.desiredSize! < 0) {
        this.#failure = { error };
        this.#waiting = false;
        return;
      }
      this.#done = true;
      return controller.error(error);
    }
    // Chunks queued that the consumer has not asked for yet: read no further until it pulls again.
    if (controller.desiredSize! < 0) {
      this.#waiting = false;
      this.#settle();
      return;
    }
    this.source.wait(this.#flow);
  }
}

/**
 * `source` watched on its way: `onChunk` told each chunk, `onEnd` told once how it ended: `complete`, or not (a
 * client that left), and what it failed with when the source failed.
 */
export function tapStream(
  source: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
  onEnd: (complete: boolean, failure?: unknown) => void,
): ReadableStream<Uint8Array> {
  let ended = false;
  const end = (complete: boolean, failure?: unknown) => {
    if (ended) return;
    ended = true;
    onEnd(complete, failure);
  };
  return stacked(source, (reader) => ({
    poll: () => {
      try {
        const chunk = reader.poll();
        if (chunk === null) end(true);
        else if (chunk) onChunk(chunk);
        return chunk;
      } catch (error) {
        end(false, error ?? new Error("stream failed"));
        throw error;
      }
    },
    wait: (then) => reader.wait(then),
    cancel: (reason) => {
      end(false);
      return reader.cancel(reason).catch(() => {});
    },
  }));
}

/**
 * A pass-through that changes chunks as the client pulls them: `map` returns what to hand on for a chunk (nothing:
 * the next chunk is read), `flush` what to add at the end. Lighter than a `TransformStream` (one stream, no
 * writable side): a client that leaves cancels the source.
 */
export function mapStream(
  source: ReadableStream<Uint8Array>,
  map: (chunk: Uint8Array) => Uint8Array | undefined,
  flush: () => Uint8Array | undefined,
): ReadableStream<Uint8Array> {
  let flushed = false;
  return stacked(source, (reader) => ({
    poll: () => {
      for (;;) {
        const chunk = reader.poll();
        if (chunk === undefined) return undefined;
        if (chunk === null) {
          if (flushed) return null;
          flushed = true;
          return flush() ?? null;
        }
        const out = map(chunk);
        if (out) return out;
      }
    },
    wait: (then) => reader.wait(then),
    cancel: (reason) => reader.cancel(reason).catch(() => {}),
  }));
}

/**
 * A watcher that may hold a chunk back: `onChunk` returns a promise when the client must not see the chunk before
 * it settles (a write the next request may depend on). The chunk is handed on once it has; nothing is read
 * meanwhile. A client that leaves cancels the source.
 */
export function holdStream(
  source: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => Promise<unknown> | undefined,
): ReadableStream<Uint8Array> {
  const reader = pollReader(source);
  let held: Uint8Array | undefined;
  let gate: Promise<void> | undefined;
  const open = () => {
    gate = undefined;
  };
  const holding: PipeSource = {
    poll: () => {
      if (gate) return undefined;
      if (held) {
        const chunk = held;
        held = undefined;
        return chunk;
      }
      const chunk = reader.poll();
      if (!chunk) return chunk;
      const pending = onChunk(chunk);
      if (!pending) return chunk;
      held = chunk;
      gate = pending.then(open, open);
      return undefined;
    },
    wait: (then) => gate ? void gate.then(then) : reader.wait(then),
    cancel: (reason) => reader.cancel(reason).catch(() => {}),
  };
  return pipeStream(holding);
}
