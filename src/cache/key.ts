/**
 * The cache key of a generation request: SHA-256 (hex) of the canonical JSON of its route, model group,
 * whether it streams, and its body without the proxy-only `cache` field. Canonical means keys sorted at every
 * depth, so two bodies that differ only in key order share an entry. `stream: false` and a missing `stream`
 * are the same request; a streamed and a non-streamed request never share one. Pure.
 */

import { createHash } from "node:crypto";
import stringify from "safe-stable-stringify";
import type { Route } from "../core/route.ts";

export interface KeyInput {
  readonly route: Route;
  /** The model group name. */
  readonly group: string;
  readonly stream: boolean;
  readonly body: Readonly<Record<string, unknown>>;
  /** Entries of their own for one caller (a `private` key); absent: shared by every caller. */
  readonly scope?: string;
}

/** JSON with object keys sorted at every depth (undefined members dropped, as JSON.stringify does). */
export function canonicalJson(value: unknown): string {
  return stringify(value) ?? "null";
}

/** The hex SHA-256 cache key of a request. */
export function cacheKey(input: KeyInput): string {
  const { cache: _cache, stream: _stream, ...body } = input.body;
  const shared = { route: input.route, group: input.group, stream: input.stream, body };
  const canonical = canonicalJson(input.scope === undefined ? shared : { ...shared, scope: input.scope });
  return createHash("sha256").update(canonical).digest("hex");
}
