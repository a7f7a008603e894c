/**
 * The command line of the bench's stand-in gateways (minimal_gateway.ts, stream_floor.ts): they take the proxy's
 * own (`--config FILE --port N`, other flags ignored) so the A/B tools start them as they start the proxy, and
 * forward to the first endpoint of the config's first group.
 */

import { parseArgs } from "node:util";
import type { Config, EndpointConfig } from "../src/config/config.ts";
import { loadConfig } from "../src/config/load.ts";
import { upstreamUrl } from "../src/upstream/providers.ts";

/** Where a stand-in gateway forwards: the first endpoint of the config's first group. */
export interface GatewayTarget {
  readonly endpoint: EndpointConfig;
  /** The endpoint's chat completions URL. */
  readonly url: URL;
}

export interface GatewayArgs extends GatewayTarget {
  readonly port: number;
}

export function gatewayTarget(config: Config): GatewayTarget {
  const endpoint = config.groups[0].endpoints[0];
  return { endpoint, url: new URL(upstreamUrl(endpoint, "chat/completions")) };
}

export async function gatewayArgs(args: string[] = Deno.args): Promise<GatewayArgs> {
  // `bench/memory.ts` loads each build with `--version` first (to warm Deno's caches), as it does the proxy.
  if (args.includes("--version")) {
    console.log("a bench gateway");
    Deno.exit(0);
  }
  const { values } = parseArgs({
    args,
    strict: false,
    options: { config: { type: "string" }, port: { type: "string", default: "0" } },
  });
  const config = await loadConfig(String(values.config), (name) => Deno.env.get(name));
  return { port: Number(values.port), ...gatewayTarget(config) };
}
