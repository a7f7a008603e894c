/**
 * What a config file of the Python LLMProxy needs beyond the schema:
 *
 * - `withoutNulls`: null (an empty YAML value, `~`) means "not set" for every optional key, as in the Python version,
 *   whose `Optional[...]` keys take `null`. Required keys keep their null, so the schema still names them.
 * - `ignoredKeys`: the keys the Python version reads that this proxy accepts without using, each with the reason, for
 *   one `warn` line at start. Keys neither version knows stay errors (the schema is strict).
 */

import { type AnySchema, ArrayOf, StrictObject, Wrapper } from "../check/mod.ts";
import type { IgnoredKey } from "./config.ts";
import { type ConfigFile, ConfigFileSchema } from "./schema.ts";

/** The tree with every null-valued optional key removed, at any depth the schema describes. */
export function withoutNulls(tree: unknown): unknown {
  return prune(tree, ConfigFileSchema);
}

function prune(node: unknown, schema: AnySchema): unknown {
  const inner = unwrap(schema);
  if (Array.isArray(node)) {
    return inner instanceof ArrayOf ? node.map((item) => prune(item, inner.element)) : node;
  }
  if (node === null || typeof node !== "object" || !(inner instanceof StrictObject)) return node;
  const shape: Record<string, AnySchema> = inner.shape;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (field === undefined) out[key] = value; // unknown: the schema reports it
    else if (value === null && field.safeParse(undefined).success) continue;
    else out[key] = prune(value, field);
  }
  return out;
}

/** Through optional, default, preprocess and the like, down to the schema that judges the value. */
function unwrap(schema: AnySchema): AnySchema {
  let current = schema;
  while (current instanceof Wrapper) current = current.inner;
  return current;
}

const REASONS = {
  http_max_connections:
    "connections to upstreams are pooled per origin with no cap on concurrent ones (idle ones kept within the open-file budget)",
  redis_ssl_cert_reqs: 'the certificate of a TLS Redis server is always verified (as with "required")',
  caller_headers: "usage stream entries name the key, not caller headers",
  cache_type:
    "the cache lives in the proxy's state store: Redis when general_settings names one, else memory",
  cache_server: "the cache shares the Redis server that general_settings names",
  max_retries: "general_settings.num_retries applies to every endpoint",
  websocket_base_url: "the proxy calls upstreams over HTTP only",
} as const;

/** The keys of `file` that the Python version read and this proxy does not use, in file order. */
export function ignoredKeys(file: ConfigFile): IgnoredKey[] {
  const out: IgnoredKey[] = [];
  const note = (given: unknown, key: string, reason: string) => {
    if (given !== undefined) out.push({ key, reason });
  };
  const gs = file.general_settings;
  file.model_groups.forEach((group, g) =>
    group.models.forEach((entry, m) => {
      const at = `model_groups[${g}].models[${m}].params`;
      note(entry.params.max_retries, `${at}.max_retries`, REASONS.max_retries);
      note(entry.params.websocket_base_url, `${at}.websocket_base_url`, REASONS.websocket_base_url);
    })
  );
  note(gs.http_max_connections, "general_settings.http_max_connections", REASONS.http_max_connections);
  note(gs.redis_ssl_cert_reqs, "general_settings.redis_ssl_cert_reqs", REASONS.redis_ssl_cert_reqs);
  note(
    gs.usage_stream?.caller_headers,
    "general_settings.usage_stream.caller_headers",
    REASONS.caller_headers,
  );
  const cp = gs.cache_params;
  note(cp.type, "general_settings.cache_params.type", REASONS.cache_type);
  // Used as the Redis server when general_settings names none; ignored where they differ from the one it names.
  const nodes = gs.redis_cluster_nodes ?? [];
  if (gs.redis_url === undefined && gs.redis_host === undefined && nodes.length === 0) return out;
  const named: Partial<Record<"host" | "port" | "password", unknown>> =
    gs.redis_url === undefined && nodes.length === 0
      ? { host: gs.redis_host, port: gs.redis_port, password: gs.redis_password }
      : {};
  for (const part of ["host", "port", "password"] as const) {
    if (cp[part] !== named[part]) {
      note(cp[part], `general_settings.cache_params.${part}`, REASONS.cache_server);
    }
  }
  return out;
}
