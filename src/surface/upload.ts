/**
 * A client's upload on its way upstream without being held whole. The bytes read ahead (to find the `model` field
 * of a form, or a small body read entirely) are held; the rest is pulled from the client only as the upstream takes
 * it. An attempt that failed before anything beyond the held bytes was pulled can be sent again to another
 * endpoint; after that the body is gone, and the request cannot fail over.
 */

import { invalidRequest, ProxyError, tooLarge } from "../errors.ts";
import { type MultipartEvent, MultipartScanner } from "../multipart/scanner.ts";

/** A body whose declared length is at most this is read whole first, so every attempt can send it. */
export const HOLD_WHOLE_BYTES = 4 * 1024 * 1024;
/** Most bytes of a form held while looking for its `model` field (a file sent ahead of it is held). */
export const HOLD_FORM_BYTES = 32 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class UploadBody {
  readonly #held: Uint8Array[];
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | null;
  #pulled = false;

  /** `held` chunks come first; `reader` (null when the body was read whole) gives the rest. */
  constructor(held: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array> | null) {
    this.#held = held;
    this.#reader = reader;
  }

  /** True while no attempt has taken bytes beyond the held ones. */
  get replayable(): boolean {
    return !this.#pulled;
  }

  /** A fresh stream for one attempt: the held bytes, then the rest of the client's body. */
  stream(): ReadableStream<Uint8Array> {
    let index = 0;
    const reader = this.#reader;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (index < this.#held.length) return controller.enqueue(this.#held[index++]);
        if (!reader) return controller.close();
        this.#pulled = true;
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: (reason) => {
        if (this.#pulled) return reader?.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  /** Gives the client's body up (the request ended without sending it all). */
  async discard(): Promise<void> {
    await this.#reader?.cancel().catch(() => {});
  }
}

/** Reads a body of declared `length` (at most `HOLD_WHOLE_BYTES`) whole, or holds nothing of a larger one. */
export async function openUpload(
  body: ReadableStream<Uint8Array> | null,
  length: number | null,
): Promise<UploadBody> {
  if (!body) return new UploadBody([], null);
  const reader = body.getReader();
  if (length === null || length > HOLD_WHOLE_BYTES) return new UploadBody([], reader);
  return new UploadBody(await readAll(reader, HOLD_WHOLE_BYTES), null);
}

/**
 * Opens a form upload and finds its `model` field: read ahead until the field has passed (holding what came before
 * it, at most `HOLD_FORM_BYTES`), or the whole body when it is small. `model` is null when the form has none.
 */
export async function openForm(
  body: ReadableStream<Uint8Array> | null,
  boundary: string,
  length: number | null,
): Promise<{ upload: UploadBody; model: string | null }> {
  if (!body) throw invalidRequest("The multipart/form-data body is empty");
  const reader = body.getReader();
  const scanner = new MultipartScanner(boundary);
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let model: string | null = null;
  let inModel = false;
  const whole = length !== null && length <= HOLD_WHOLE_BYTES;
  while (true) {
    const { done, value } = await read(reader);
    if (done) {
      scanner.finish();
      return { upload: new UploadBody(held, null), model };
    }
    held.push(value);
    heldBytes += value.length;
    let found = false;
    for (const event of scanner.push(value)) {
      if (event.kind === "data") {
        if (inModel) model += decoder.decode(event.raw);
        continue;
      }
      if (inModel) found = true;
      inModel = event.kind === "part" && event.name === "model" && event.filename === null;
      if (inModel) model = "";
    }
    if (found && !whole) return { upload: new UploadBody(held, reader), model };
    if (heldBytes > HOLD_FORM_BYTES) {
      await reader.cancel().catch(() => {});
      throw new ProxyError(
        413,
        "invalid_request_error",
        "request_too_large",
        `The form's 'model' field did not come within its first ${HOLD_FORM_BYTES} bytes: send it before the ` +
          "file, or name the model group in the x-llmproxy-model-group header",
      );
    }
  }
}

/**
 * The form with the value of its text field `name` replaced by `value`; every other byte passes unchanged. Pulled
 * chunk by chunk, never reading ahead of its reader (a pipe would read the client's body before the upstream asks).
 */
export function replaceField(
  form: ReadableStream<Uint8Array>,
  boundary: string,
  name: string,
  value: string,
): ReadableStream<Uint8Array> {
  const reader = form.getReader();
  const scanner = new MultipartScanner(boundary);
  let replacing = false;
  let finished = false;
  const rewrite = (events: MultipartEvent[], controller: ReadableStreamDefaultController<Uint8Array>) => {
    let sent = false;
    for (const event of events) {
      if (event.kind !== "data") {
        if (replacing) controller.enqueue(encoder.encode(value));
        replacing = event.kind === "part" && event.name === name && event.filename === null;
      } else if (replacing) continue;
      controller.enqueue(event.raw);
      sent = true;
    }
    return sent;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (!finished) {
        const { done, value: chunk } = await reader.read();
        finished = done;
        if (rewrite(done ? scanner.finish() : scanner.push(chunk), controller)) return;
      }
      controller.close();
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

async function read(reader: ReadableStreamDefaultReader<Uint8Array>) {
  try {
    return await reader.read();
  } catch (error) {
    throw new ProxyError(
      499,
      "invalid_request_error",
      "client_closed_request",
      "The client closed the request",
      {
        cause: error,
      },
    );
  }
}

async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  while (true) {
    const { done, value } = await read(reader);
    if (done) return chunks;
    bytes += value.length;
    if (bytes > limit) {
      // More than declared: stream the rest instead of holding it.
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
}
