/**
 * `deno task demo`: the proxy in front of simulated OpenAI-compatible endpoints, so every feature can be tried
 * with no API key and no network. Two primaries (weights 2:1) and a weight-0 fallback serve the group "demo".
 */

import type { Config } from "./config/config.ts";
import { parseConfig } from "./config/parse.ts";
import { SimUpstream } from "./sim/upstream.ts";

export interface Demo extends AsyncDisposable {
  readonly config: Config;
  readonly upstreams: readonly SimUpstream[];
}

export async function startDemo(): Promise<Demo> {
  const upstreams = await Promise.all(
    ["east", "west", "fallback"].map((name) =>
      SimUpstream.start({ name, quiet: true, chunks: 12, chunkDelayMs: 40, latencyMs: 150, record: false })
    ),
  );
  const [east, west, fallback] = upstreams;
  const yaml = `
model_groups:
  - model_group: demo
    models:
      - model: demo-east
        weight: 2
        params: { base_url: "${east.url}", api_key: demo-key, name: east }
      - model: demo-west
        weight: 1
        params: { base_url: "${west.url}", api_key: demo-key, name: west }
      - model: demo-fallback
        weight: 0
        params: { base_url: "${fallback.url}", api_key: demo-key, name: fallback }
general_settings:
  cooldown_time: 10
  cache: true
`;
  const config = parseConfig(yaml, "<built-in demo config>", () => undefined);
  return {
    config,
    upstreams,
    [Symbol.asyncDispose]: async () => {
      await Promise.all(upstreams.map((upstream) => upstream.close()));
    },
  };
}
