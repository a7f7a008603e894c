/** Reading and checking a client's JSON body: size limit, JSON object, field types. */

import type { HeaderReader } from "../core/header_reader.ts";
import type { BodyHold } from "./body_pool.ts";
import {
  bodyReadFailed,
  ClientGone,
  echoed,
  invalidJson,
  invalidRequest,
  ProxyError,
  tooLarge,
} from "../errors.ts";
import { type Deadline, deadlines } from "../util/deadlines.ts";
import { checkJsonShape, MAX_JSON_DEPTH } from "./json_shape.ts";
import { newScan, scanJson } from "./json_scan.ts";
import { heavy } from "../util/heavy.ts";
import { joinBytes } from "../util/bytes.ts";

// A body that is not UTF-8 is refused (400) rather than forwarded with U+FFFD in place of its bytes. The runtime's
// lenient UTF-8 decode is its fast path (a fatal decoder takes the general one: ~1 us more per request, several
// under load); only a text holding U+FFFD, which a bad byte always leaves, is decoded again strictly to tell.
const lenient = new TextDecoder();
const strict = new TextDecoder("utf-8", { fatal: true });

function decode(bytes: Uint8Array): string {
  const text = lenient.decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  try {
    return strict.decode(bytes);
  } catch {
    throw invalidJson("Request body is not valid UTF-8");
  }
}

/** How long a client may take to upload its body before it gets a 408 (default of `general_settings.body_timeout`). */
export const BODY_TIMEOUT_MS = 60_000;

/**
 * Reads the body as text, refusing more than `limit` bytes (413) without reading further. A client that goes away
 * mid-upload is `ClientGone` (499, not logged as the proxy's error); one that trickles its body for longer than
 * `timeoutMs` gets a 408 instead of holding the request forever. A body of unknown length takes its bytes from
 * `hold` as they arrive (the pool's 503 or 413 when they do not fit); one of declared length was reserved whole
 * before (`middleware/inflight_bodies.ts`).
 */
export function readBodyText(
  request: Request,
  limit: number,
  timeoutMs = BODY_TIMEOUT_MS,
  headers: HeaderReader = request.headers,
  hold?: BodyHold,
): Promise<string> {
  const declared = headers.get("content-length");
  if (declared !== null && Number(declared) > limit) return refuse(request, limit);
  // A declared length within the limit is read whole at once: Deno hands over a body that has fully arrived
  // without a stream (the usual case: SDKs send small bodies in one go). That path is lost once `request.body` has
  // been touched (it builds the stream), so it is not looked at here. A body of unknown length is read through a
  // reader that counts against the limit.
  if (declared !== null) return readWhole(request, limit, timeoutMs);
  if (!request.body) return Promise.resolve("");
  return readStreamed(request.body, limit, timeoutMs, hold);
}

/** A declared length over the limit: 413 without reading the body. */
async function refuse(request: Request, limit: number): Promise<never> {
  await request.body?.cancel().catch(() => {});
  throw tooLarge(limit);
}

/** A body of unknown length, counted against the limit as it arrives; cancelled on the deadline. */
async function readStreamed(
  body: ReadableStream<Uint8Array>,
  limit: number,
  timeoutMs: number,
  hold: BodyHold | undefined,
): Promise<string> {
  const reader = body.getReader();
  let timer: Deadline | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = deadlines.after(timeoutMs, () => {
      reader.cancel().catch(() => {});
      reject(bodyTimeout(timeoutMs));
    });
  });
  try {
    const read = readLimited(reader, limit, hold);
    read.catch(() => {}); // after a 408 the read may still fail, unobserved
    return await Promise.race([read, deadline]);
  } catch (error) {
    if (error instanceof ProxyError) throw error;
    throw bodyReadFailed(error);
  } finally {
    timer?.cancel();
  }
}

/**
 * A body of declared length, read whole. Settled by whichever comes first, the body or the deadline, through one
 * promise (this runs on every request). The read itself cannot be cancelled: after a 408 it stays pending until
 * the client sends the rest or goes away.
 */
function readWhole(request: Request, limit: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = deadlines.after(timeoutMs, () => reject(bodyTimeout(timeoutMs)));
    request.bytes().then((bytes) => {
      timer.cancel();
      if (bytes.byteLength > limit) reject(tooLarge(limit));
      else {
        try {
          resolve(heavy(bytes.byteLength, () => decode(bytes)));
        } catch (error) {
          reject(error);
        }
      }
    }, () => {
      timer.cancel();
      reject(new ClientGone());
    });
  });
}

function bodyTimeout(timeoutMs: number): ProxyError {
  return new ProxyError(
    408,
    "invalid_request_error",
    "request_timeout",
    `The request body did not arrive within ${timeoutMs / 1000}s`,
  );
}

/** Reads up to `limit` bytes (more is a 413), each taken from `hold` as it arrives. */
async function readLimited(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number,
  hold: BodyHold | undefined,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    try {
      hold?.take(value.byteLength);
    } catch (refusal) {
      await reader.cancel().catch(() => {});
      throw refusal;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return await heavy(size, () => decode(chunks[0]));
  const joined = joinBytes(chunks, size);
  return await heavy(size, () => decode(joined));
}

/**
 * What a body that did not read as JSON gets when it came in a content coding (`Content-Encoding: gzip`, ...): the
 * proxy reads bodies as sent, so it failed for its coding, not as malformed JSON. 415 naming the coding, with
 * `Accept-Encoding: identity` (RFC 9110, 15.5.16). Only looked at on that error: a request that parses pays nothing.
 */
export function unsupportedCoding(error: ProxyError, coding: string | undefined): ProxyError {
  return error.code === "invalid_json" ? codingRefusal(coding) ?? error : error;
}

/**
 * Refuses a body in a content coding up front (the same 415) where the proxy passes it on rather than parse it (a
 * form or file upload): the upstream would get the coded bytes, unlabelled, as the form.
 */
export function refuseCoding(coding: string | undefined): void {
  const refusal = codingRefusal(coding);
  if (refusal) throw refusal;
}

/** The 415 for a body in `coding`; undefined for none or `identity`. */
function codingRefusal(coding: string | undefined): ProxyError | undefined {
  if (!coding || /^\s*identity\s*$/i.test(coding)) return undefined;
  return new ProxyError(
    415,
    "invalid_request_error",
    "unsupported_content_encoding",
    `Content-Encoding '${echoed(coding)}' is not supported: send the request body uncompressed`,
    { headers: { "accept-encoding": "identity" } },
  );
}

/** Most objects, arrays and object members a request body may hold (`general_settings.max_body_items`). */
export const MAX_BODY_ITEMS = 100_000;

/** Characters of a big body scanned in one piece of work (~2-7 ms). */
const SCAN_PIECE = 1024 * 1024;

/**
 * Parses a JSON object body (see `parseJsonObject`), as big work when it is big. A text long enough to hold more
 * than `maxItems` objects, arrays and members (each takes at least two characters) is scanned first, in pieces,
 * and refused with a 400 when it holds more, before it is parsed: the parse, the cache key and the serialisation
 * of what is forwarded are each one uninterrupted piece whose cost grows with the members, not the bytes (500,000
 * small members in 9.3 MB took ~0.9 s to parse). The scan also tells whether the nesting check has anything to
 * find, so a scanned body is not walked again.
 */
export function parseJsonBody(
  text: string,
  maxItems = MAX_BODY_ITEMS,
): Record<string, unknown> | Promise<Record<string, unknown>> {
  if (text.length < 2 * maxItems) return heavy(text.length, () => parseJsonObject(text));
  return parseScanned(text, maxItems);
}

async function parseScanned(text: string, maxItems: number): Promise<Record<string, unknown>> {
  const scan = newScan();
  let scanned = false;
  while (!scanned) {
    scanned = await heavy(text.length, () => scanJson(text, scan, scan.at + SCAN_PIECE, maxItems));
  }
  if (scan.items > maxItems) throw tooManyItems(maxItems);
  const walk = scan.deepest > MAX_JSON_DEPTH || scan.bigNumber;
  return await heavy(text.length, () => parseJsonObject(text, walk));
}

function tooManyItems(maxItems: number): ProxyError {
  return new ProxyError(
    400,
    "invalid_request_error",
    "request_too_complex",
    `Request body holds more than ${maxItems} JSON objects, arrays and object members (the limit of this proxy)`,
  );
}

/**
 * Parses a JSON object body; anything else is a 400 `invalid_json`. `check: false` leaves out the nesting and
 * number check, for a text a scan found nothing of that kind in.
 */
export function parseJsonObject(text: string, check = true): Record<string, unknown> {
  if (text.trim() === "") throw invalidJson("Request body is empty; expected a JSON object");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidJson(`Request body is not valid JSON: ${(error as Error).message}`);
  }
  if (check && typeof value === "object" && value !== null) checkJsonShape(value);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidJson(
      `Request body must be a JSON object, got ${
        value === null ? "null" : Array.isArray(value) ? "an array" : typeof value
      }`,
    );
  }
  return value as Record<string, unknown>;
}

const typeName = (value: unknown) => value === null ? "null" : Array.isArray(value) ? "array" : typeof value;

/** Checks `stream` and returns whether the client asked for a stream (`false` and absent both mean no). */
export function streamFlag(body: Record<string, unknown>): boolean {
  const stream = body.stream;
  if (stream === undefined || stream === null) return false;
  if (typeof stream !== "boolean") {
    throw invalidRequest(`'stream' must be a boolean, got ${typeName(stream)}`, "stream");
  }
  return stream;
}

/** Checks the fields the proxy itself relies on, per route; everything else is the upstream's business. */
export function checkFields(route: "chat" | "responses" | "embeddings", body: Record<string, unknown>): void {
  if (route === "chat" && (!Array.isArray(body.messages) || body.messages.length === 0)) {
    throw invalidRequest(`'messages' must be a non-empty array, got ${typeName(body.messages)}`, "messages");
  }
  if (route === "embeddings" && body.input === undefined) {
    throw invalidRequest("'input' is required for embeddings", "input");
  }
  if (
    body.cache !== undefined &&
    (typeof body.cache !== "object" || body.cache === null || Array.isArray(body.cache))
  ) {
    throw invalidRequest(`'cache' must be an object, got ${typeName(body.cache)}`, "cache");
  }
}
