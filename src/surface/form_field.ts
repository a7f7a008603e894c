/**
 * A form on its way upstream with one text field's value replaced (a transcription's `model`, per endpoint).
 * Chunks pass as they come and are written out before the next is asked for, so they may share the reader's one
 * buffer: nothing is copied per chunk. After that field, chunks pass as they are, only watched for a second field
 * of the name: a form that has one is refused (400), since an upstream that reads the last value would read the
 * client's own, unchecked (a model the key may not use). A file part of the name, wherever it comes, is refused
 * too: an upstream may read it as the field.
 */

import { invalidRequest } from "../errors.ts";
import { MultipartScanner } from "../multipart/scanner.ts";
import type { StreamedBody } from "../upstream/http1_chunked.ts";

const encoder = new TextEncoder();

/** `form` with the value of its text field `name` set to `value`; every other byte passes unchanged. */
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
      // Watched, not rewritten: the chunk itself goes on (the events' bytes are its own).
      for (const event of scanner.push(chunk)) if (isField(event, name)) throw twice(name);
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
      if (isField(event, name)) {
        if (replaced) throw twice(name);
        inField = true;
      }
      yield event.raw;
    }
    // What the scanner holds back goes now; it keeps it too, to find a delimiter that spans the next chunk.
    if (replaced) yield scanner.held;
  }
  if (replaced) return;
  // No such field, or it ran to the end of a malformed form: what the scanner still holds goes as it is.
  yield scanner.release();
}

/** Whether `event` begins the text field `name`; a file part of that name is refused (400). */
export function isField(
  event: { kind: string; name?: string; filename?: string | null },
  name: string,
): boolean {
  if (event.kind !== "part" || event.name !== name) return false;
  if (event.filename !== null) {
    throw invalidRequest(`The form's '${name}' is a file part: send it once, as a text field`, name);
  }
  return true;
}

/** A form that names field `name` twice. */
export const twice = (name: string) =>
  invalidRequest(`The form has more than one '${name}' field: send it once`, name);
