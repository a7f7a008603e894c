/**
 * A form on its way upstream with one text field's value replaced (a transcription's `model`, per endpoint).
 * Chunks pass as they come and are written out before the next is asked for, so they may share the reader's one
 * buffer: nothing is copied per chunk. Only the form up to the end of that field is scanned; after it, bytes pass
 * unread.
 */

import { MultipartScanner } from "../multipart/scanner.ts";
import type { StreamedBody } from "../upstream/http1_chunked.ts";

const encoder = new TextEncoder();

/** `form` with the value of its first text field `name` set to `value`; every other byte passes unchanged. */
export async function* replacedField(
  form: StreamedBody,
  boundary: string,
  name: string,
  value: string,
): AsyncGenerator<Uint8Array> {
  const scanner = new MultipartScanner(boundary);
  let inField = false;
  let replaced = false;
  for await (const chunk of form) {
    if (replaced) {
      yield chunk;
      continue;
    }
    for (const event of scanner.push(chunk)) {
      if (event.kind === "data" && inField) continue;
      if (event.kind !== "data" && inField) {
        yield encoder.encode(value);
        inField = false;
        replaced = true;
      }
      if (!replaced && event.kind === "part" && event.name === name && event.filename === null) {
        inField = true;
      }
      yield event.raw;
    }
    if (replaced) yield scanner.release();
  }
  if (replaced) return;
  // No such field, or it ran to the end of a malformed form: what the scanner still holds goes as it is.
  yield scanner.release();
}
