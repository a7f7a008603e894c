/**
 * A client's upload on its way upstream without being held whole. The bytes read ahead (to find the `model` field
 * of a form, or a small body read entirely) are held; the rest is pulled from the client only as the upstream takes
 * it. An attempt that failed before anything beyond the held bytes was pulled can be sent again to another
 * endpoint; after that the body is gone, and the request cannot fail over.
 */

import type { AttemptOutcome } from "../balancer/balancer.ts";
import { bodyReadFailed, invalidRequest, ProxyError, tooLarge } from "../errors.ts";
import { MultipartScanner } from "../multipart/scanner.ts";
import { ChunkSource } from "./chunk_source.ts";
import { isField, twice } from "./form_field.ts";
import type { BodyPool } from "../http/body_pool.ts";

/** A body whose declared length is at most this is read whole first, so every attempt can send it. */
export const HOLD_WHOLE_BYTES = 4 * 1024 * 1024;
/** Most bytes of a form held while looking for its `model` field (a file sent ahead of it is held). */
export const HOLD_FORM_BYTES = 32 * 1024 * 1024;

const decoder = new TextDecoder();

export class UploadBody {
  readonly #held: Uint8Array[];
  readonly #source: ChunkSource | null;
  #pulled = false;

  /** `held` chunks come first; `source` (null when the body was read whole) gives the rest. */
  constructor(held: Uint8Array[], source: ChunkSource | null) {
    this.#held = held;
    this.#source = source;
  }

  /** Why the body cannot go to another endpoint (for a `ResendPlan`): once bytes beyond the held ones went. */
  readonly unresendable = (): string | undefined =>
    this.#pulled
      ? "after the request body had been streamed to it; a streamed body cannot be sent to another endpoint: " +
        "send the request again"
      : undefined;

  /**
   * Why an upload that makes an object each time it is received (`POST /files`) cannot go to another endpoint
   * after an attempt that got `outcome`. Only an answer that says the endpoint did not take it (a refusal below
   * 500: 429, 401, 403, 404, 408, a redirect) or a connection that was never made moves it on; after a 5xx, a
   * timeout or a connection lost mid-way, the endpoint may have made the file, and a second would be a duplicate.
   */
  readonly unresendableUpload = (outcome: AttemptOutcome): string | undefined => {
    const streamed = this.unresendable();
    if (streamed !== undefined) return streamed;
    if (outcome.kind === "status" ? outcome.status < 500 : outcome.kind === "connection" && outcome.unsent) {
      return undefined;
    }
    return "after the upload had been sent to it; it may have made the file, so the upload is not sent to " +
      "another endpoint (that could make it twice): list the files before sending it again";
  };

  /** The rest of the client's body; each chunk may share a buffer with the next (see `ChunkSource`). */
  async #next(): Promise<Uint8Array | null> {
    if (!this.#source) return null;
    this.#pulled = true;
    return await readFrom(this.#source);
  }

  /** The held bytes, then the rest of the client's body: a chunk is valid until the next one is asked for. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    yield* this.#held;
    for (let chunk = await this.#next(); chunk !== null; chunk = await this.#next()) yield chunk;
  }
}

/**
 * Reads a body of declared `length` (at most `HOLD_WHOLE_BYTES`, and at most the whole pool) whole, its bytes taken
 * from `pool` (`holding`, to give back when the request ends), or holds nothing of a larger one: it streams.
 */
export async function openUpload(
  body: ReadableStream<Uint8Array> | null,
  length: number | null,
  pool: BodyPool,
): Promise<{ upload: UploadBody; holding: number }> {
  if (!body) return { upload: new UploadBody([], null), holding: 0 };
  const source = new ChunkSource(body);
  if (length === null || !(length <= Math.min(HOLD_WHOLE_BYTES, pool.max))) {
    return { upload: new UploadBody([], source), holding: 0 };
  }
  if (!pool.take(length)) {
    await source.cancel();
    throw pool.refusal(length, "this upload, read whole to be sent again if its endpoint fails,");
  }
  try {
    return { upload: new UploadBody(await readAll(source, HOLD_WHOLE_BYTES), null), holding: length };
  } catch (error) {
    pool.give(length);
    throw error;
  }
}

/**
 * Opens a form upload and finds its `model` field: read ahead until the field has passed (holding what came before
 * it, at most `HOLD_FORM_BYTES` and at most the whole pool), or the whole body when it is small. `model` is null
 * when the form has none. Every byte held is taken from `pool` as it is read (`holding`, to give back).
 */
export async function openForm(
  body: ReadableStream<Uint8Array> | null,
  boundary: string,
  length: number | null,
  pool: BodyPool,
): Promise<{ upload: UploadBody; model: string | null; holding: number }> {
  if (!body) throw invalidRequest("The multipart/form-data body is empty");
  const source = new ChunkSource(body);
  const whole = length !== null && length <= Math.min(HOLD_WHOLE_BYTES, pool.max);
  let holding = 0;
  try {
    const opened = await scanForm(source, boundary, whole, Math.min(HOLD_FORM_BYTES, pool.max), (bytes) => {
      if (!pool.take(bytes)) {
        throw pool.refusal(holding + bytes, "this form read ahead to its 'model' field", SEND_MODEL_FIRST);
      }
      holding += bytes;
    });
    return { ...opened, holding };
  } catch (error) {
    pool.give(holding);
    await source.cancel();
    throw error;
  }
}

const SEND_MODEL_FIRST =
  "send 'model' before the file, or name the model group in the x-llmproxy-model-group header";

async function scanForm(
  source: ChunkSource,
  boundary: string,
  whole: boolean,
  limit: number,
  held: (bytes: number) => void,
): Promise<{ upload: UploadBody; model: string | null }> {
  const scanner = new MultipartScanner(boundary);
  const chunks: Uint8Array[] = [];
  let heldBytes = 0;
  let model: string | null = null;
  let inModel = false;
  while (true) {
    const chunk = await readFrom(source);
    if (chunk === null) {
      scanner.finish();
      return { upload: new UploadBody(chunks, null), model };
    }
    heldBytes += chunk.length;
    if (heldBytes > limit) {
      // Final: the same form is held as far at every try.
      throw new ProxyError(
        413,
        "invalid_request_error",
        "request_too_large",
        `The form's 'model' field did not come within its first ${limit} bytes, the most the proxy holds of a ` +
          `form read ahead (${HOLD_FORM_BYTES} bytes, or general_settings.max_inflight_body_bytes when less): ` +
          SEND_MODEL_FIRST,
      );
    }
    held(chunk.length);
    const value = source.reuses ? chunk.slice() : chunk;
    chunks.push(value);
    let found = false;
    for (const event of scanner.push(value)) {
      if (event.kind === "data") {
        if (inModel) model += decoder.decode(event.raw);
        continue;
      }
      if (inModel) found = true;
      inModel = isField(event, "model");
      if (inModel && model !== null) throw twice("model");
      if (inModel) model = "";
    }
    if (found && !whole) return { upload: new UploadBody(chunks, source), model };
  }
}

/** The source's next chunk; a client that went away mid-upload is a 499, a malformed chunked body a 400. */
async function readFrom(source: ChunkSource): Promise<Uint8Array | null> {
  try {
    return await source.read();
  } catch (error) {
    throw bodyReadFailed(error);
  }
}

async function readAll(source: ChunkSource, limit: number): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  while (true) {
    const chunk = await readFrom(source);
    if (chunk === null) return chunks;
    bytes += chunk.length;
    if (bytes > limit) {
      await source.cancel();
      throw tooLarge(limit);
    }
    chunks.push(source.reuses ? chunk.slice() : chunk);
  }
}
