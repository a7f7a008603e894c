/**
 * The cache key of a generation request: SHA-256 (hex) of the canonical JSON of its route, model group,
 * whether it streams, and its body without the proxy-only `cache` field. Canonical means keys sorted at every
 * depth, so two bodies that differ only in key order share an entry. `stream: false` and a missing `stream`
 * are the same request; a streamed and a non-streamed request never share one. Pure.
 */

import type { Route } from "../core/route.ts";
import { BIG_WORK, heavy } from "../util/heavy.ts";
import { paddedLength, sha256HexPadding } from "../util/sha256.ts";
import { CanonicalBytes } from "./canonical_bytes.ts";

/** Bodies from this size are hashed by `crypto.subtle` (native, off the event loop); smaller ones at once. */
const NATIVE_HASH = 16 * 1024;

export interface KeyInput {
  readonly route: Route;
  /** The model group name. */
  readonly group: string;
  readonly stream: boolean;
  readonly body: Readonly<Record<string, unknown>>;
  /** Entries of their own for one caller (a `private` key); absent: shared by every caller. */
  readonly scope?: string;
}

/** Members the key leaves out of the body: the proxy's own field, and `stream` (the key says it once). */
const NOT_KEYED = ["cache", "stream"];

/**
 * The canonical JSON of `{ route, group, stream, body, scope }` (the body without `NOT_KEYED`) as UTF-8 bytes in
 * `sink` (reset first), written in its sorted order without building that object: the same bytes as the canonical
 * text keys were hashed from before (tests/_support/canonical_json.ts), so entries stored under them stay valid.
 */
function writeInput(input: KeyInput, sink: CanonicalBytes): void {
  sink.reset();
  sink.ascii('{"body":');
  sink.object(input.body, NOT_KEYED);
  sink.ascii(',"group":');
  sink.string(input.group);
  sink.ascii(',"route":');
  sink.string(input.route);
  if (input.scope !== undefined) {
    sink.ascii(',"scope":');
    sink.string(input.scope);
  }
  sink.ascii(input.stream ? ',"stream":true}' : ',"stream":false}');
}

/** Where ordinary requests' canonical bytes are written (one at a time: nothing awaits in between). */
const sink = new CanonicalBytes();

/** The hex SHA-256 cache key of a request, computed on the calling thread. */
export function cacheKey(input: KeyInput): string {
  writeInput(input, sink);
  return hashSink();
}

/** The SHA-256 (hex) of what `sink` holds, hashed in place (after room for the hash's padding). */
function hashSink(): string {
  const { length } = sink;
  sink.room(paddedLength(length) - length);
  return sha256HexPadding(sink.bytes, length);
}

/**
 * The same key as `cacheKey`. A small request (its canonical text under 16 KiB; most ordinary ones) is keyed at
 * once; a longer one is hashed by `crypto.subtle`; a big one (`size`: its body's text length) is also serialised
 * as big work (`heavy`), so other requests are served meanwhile.
 */
export function cacheKeyAsync(input: KeyInput, size = 0): string | Promise<string> {
  if (size >= BIG_WORK) {
    return (async () => {
      const bytes = await heavy(size, () => {
        const own = new CanonicalBytes(); // not the shared sink: it would keep a big body's buffer until a reset
        writeInput(input, own);
        return own.bytes.slice(0, own.length);
      });
      return hex(await crypto.subtle.digest("SHA-256", bytes));
    })();
  }
  // The canonical bytes' length decides, not `size`: a body with no noted size (0: a Responses conversation
  // replayed after its owner failed is a new object) can be MiBs, which the JavaScript SHA-256 would hash on the
  // event loop. Written as bytes, not as a text then encoded (issue 22.2b: ~1.1 KB less per miss).
  writeInput(input, sink);
  if (sink.length >= NATIVE_HASH) return hashNatively(sink.bytes.slice(0, sink.length));
  return hashSink();
}

async function hashNatively(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

function hex(digest: ArrayBuffer): string {
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}
