/** An endpoint's resolved config for unit tests that never call it (its URL is the discard port). */

import type { EndpointConfig } from "../../src/config/config.ts";

/** Endpoint `id` of group "g", weight 1, no limits, with `extra` (weight, rpm, tpm, ...) over that. */
export function testEndpoint(id: string, extra: Partial<EndpointConfig> = {}): EndpointConfig {
  return {
    id,
    group: "g",
    model: "m",
    weight: 1,
    provider: "openai",
    baseUrl: "http://127.0.0.1:9",
    apiKey: "sk-test",
    timeoutMs: 1000,
    headers: {},
    ...extra,
  };
}
