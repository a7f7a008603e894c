/**
 * The limits that keep hostile clients and upstreams from taking the proxy down (`general_settings`): open client
 * connections, slow clients, memory held by request bodies and upstream answers, slow upstream connects. Their
 * keys are spread into the `general_settings` schema; `resolveLimits` turns them into the resolved settings.
 */

import * as z from "../check/mod.ts";
import { numeric } from "./schema_parts.ts";

const MiB = 1024 * 1024;

const positiveSeconds = numeric(z.number().check(z.positive()));
const positiveCount = numeric(z.number().check(z.int(), z.positive()));

/** The `general_settings` keys, with their defaults. */
export const LIMIT_KEYS = {
  /** Unset: derived from the process's open-file limit (`serve/fd_limit.ts`). */
  max_connections: z.optional(positiveCount),
  keepalive_timeout: z.withDefault(positiveSeconds, 30),
  header_timeout: z.withDefault(positiveSeconds, 10),
  body_timeout: z.withDefault(positiveSeconds, 60),
  /** Unset: four bodies of the largest size (`max_body_bytes`), 40 MiB by default. */
  max_inflight_body_bytes: z.optional(positiveCount),
  max_response_bytes: z.withDefault(positiveCount, 64 * MiB),
  connect_timeout: z.withDefault(positiveSeconds, 10),
};

export interface Limits {
  /** Open client connections at most; unset: derived from the open-file limit at start-up. */
  readonly maxConnections?: number;
  /** A client connection with no request for this long is closed. */
  readonly keepaliveTimeoutMs: number;
  /** A new client connection must have sent a whole request head within this. */
  readonly headerTimeoutMs: number;
  /** A request body must have arrived whole within this (408 otherwise). */
  readonly bodyTimeoutMs: number;
  /** Request body bytes held across all requests in flight; over it, 503 with `Retry-After`. */
  readonly maxInflightBodyBytes: number;
  /** Bytes of one upstream answer (after decompression); over it, 502 and the connection is dropped. */
  readonly maxResponseBytes: number;
  /** How long opening a connection to an upstream may take before the attempt fails over. */
  readonly connectTimeoutMs: number;
}

type LimitKeys = z.ObjectOutput<typeof LIMIT_KEYS>;

export function resolveLimits(gs: LimitKeys, maxBodyBytes: number): Limits {
  return {
    maxConnections: gs.max_connections,
    keepaliveTimeoutMs: Math.round(gs.keepalive_timeout * 1000),
    headerTimeoutMs: Math.round(gs.header_timeout * 1000),
    bodyTimeoutMs: Math.round(gs.body_timeout * 1000),
    maxInflightBodyBytes: gs.max_inflight_body_bytes ?? 4 * maxBodyBytes,
    maxResponseBytes: gs.max_response_bytes,
    connectTimeoutMs: Math.round(gs.connect_timeout * 1000),
  };
}
