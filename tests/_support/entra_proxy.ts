/**
 * What the Entra ID tests through the real proxy share: a chat request that says which endpoint answered, a config
 * with `ptu` (an Azure endpoint with client credentials at a token server) and an optional `payg` behind it, and a
 * clock the tests move on instead of waiting for token ages, back-offs and cooldowns.
 */

import { type Clock, systemClock } from "../../src/core/clock.ts";
import { endpointYaml } from "./proxy.ts";
import type { TokenServer } from "./token_server.ts";

export const chat = (url: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
  }).then(async (response) => ({
    status: response.status,
    endpoint: response.headers.get("x-llmproxy-endpoint"),
    text: await response.text(),
  }));

/** `ptu`, an Azure endpoint with client credentials at `tokens`, and `payg` behind it (priority 1) with a key. */
export function entraConfig(
  tokens: TokenServer,
  secret: string,
  ptu: string,
  payg?: string,
  ptuParams: string[] = [],
): string {
  return [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    "      - model: gpt-4o-deployment",
    "        params:",
    `          base_url: ${ptu}`,
    "          provider: azure",
    `          api_version: "2024-10-21"`,
    "          name: ptu",
    "          azure_ad:",
    "            tenant_id: t1",
    "            client_id: app-id",
    `            client_secret: ${secret}`,
    `            authority_host: ${tokens.url}`,
    ...ptuParams.map((line) => `          ${line}`),
    ...(payg ? [endpointYaml(payg, { name: "payg", extra: "        priority: 1" })] : []),
    "general_settings:",
    "  cache: false",
    "  allowed_fails: 100",
  ].join("\n") + "\n";
}

/** The system clock, moved on by `skip`. */
export function movableClock(): Clock & { skip(ms: number): void } {
  let offset = 0;
  return { now: () => Date.now() + offset, sleep: systemClock.sleep, skip: (ms) => void (offset += ms) };
}
