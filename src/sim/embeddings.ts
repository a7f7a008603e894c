/**
 * Embeddings answers of the simulated upstream: small deterministic vectors derived from each input's text, as
 * float lists or, with `encoding_format: "base64"` (the openai SDK's default), little-endian float32 base64.
 */

import { errorBody, type Json, Rejection, tokens } from "./content.ts";

const DEFAULT_DIMENSIONS = 8;
const MAX_DIMENSIONS = 4096;

/** `dimensions` values from the text's hash, each a multiple of 1/1024 in [-0.5, 0.5) so float32 keeps it exact. */
export function vectorFor(text: string, dimensions = DEFAULT_DIMENSIONS): number[] {
  let state = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) state = Math.imul(state ^ text.charCodeAt(i), 0x01000193) >>> 0;
  const out = new Array<number>(dimensions);
  for (let i = 0; i < dimensions; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = ((state & 1023) - 512) / 1024;
  }
  return out;
}

function base64Floats(values: number[]): string {
  const bytes = new Uint8Array(new Float32Array(values).buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

/** The `list` of embeddings for `body.input` (a string, an array of strings, or token arrays). */
export function embeddingList(body: Json, model: string): Json {
  const input = body.input;
  const texts = typeof input === "string"
    ? [input]
    : Array.isArray(input) && input.length > 0
    ? (input.every((v) => typeof v === "number")
      ? [JSON.stringify(input)]
      : input.map((v) => typeof v === "string" ? v : JSON.stringify(v)))
    : undefined;
  if (!texts) {
    throw new Rejection(
      400,
      errorBody(
        "'input' must be a non-empty string or array",
        "invalid_request_error",
        "invalid_input",
        "input",
      ),
    );
  }
  const requested = Number(body.dimensions);
  const dimensions = Number.isInteger(requested) && requested > 0
    ? Math.min(requested, MAX_DIMENSIONS)
    : DEFAULT_DIMENSIONS;
  const base64 = body.encoding_format === "base64";
  let chars = 0;
  const data = texts.map((text, index) => {
    chars += text.length;
    const vector = vectorFor(text, dimensions);
    return { object: "embedding", index, embedding: base64 ? base64Floats(vector) : vector };
  });
  const used = tokens(chars);
  return { object: "list", data, model, usage: { prompt_tokens: used, total_tokens: used } };
}
