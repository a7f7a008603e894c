// temporary probe (not committed)
import { BENCH_GROUP, configYaml } from "./proxy_config.ts";
const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname;
const mode = Deno.args[1] ?? "app";
const ANSWER = new TextEncoder().encode(JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion", created: 1764000000, model: "gpt-4o-mini", choices: [{ index: 0, message: { role: "assistant", content: "Hello, benchmark! ".repeat(12).trim(), refusal: null }, logprobs: null, finish_reason: "stop" }], usage: { prompt_tokens: 12, completion_tokens: 60, total_tokens: 72 }, system_fingerprint: "fp_bench" }));
const ANSWER_HEADERS = { "content-type": "application/json", "openai-processing-ms": "3", "x-request-id": "req_upstream", "x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999", "x-ratelimit-reset-requests": "6ms", "x-ratelimit-limit-tokens": "2000000", "x-ratelimit-remaining-tokens": "1999900", "x-ratelimit-reset-tokens": "1ms" };
const upstreamFetch = (_i: unknown, _init?: RequestInit) => Promise.resolve(new Response(ANSWER, { headers: ANSWER_HEADERS }));
const { parseConfig } = await import(`file://${root}/src/config/load.ts`);
const { buildServices } = await import(`file://${root}/src/services.ts`);
const { createApp } = await import(`file://${root}/src/app.ts`);
const { createLogger } = await import(`file://${root}/src/logger.ts`);
const config = parseConfig(configYaml({ upstreamUrl: "http://127.0.0.1:9", cache: false }), "x", () => undefined);
const services = await buildServices(config, { logger: createLogger({ level: "error", write: () => {} }), fetch: upstreamFetch });
const app = createApp(services);
const body = JSON.stringify({ model: BENCH_GROUP, messages: [{ role: "user", content: "Say hello to the benchmark." }] });
const mk = () => new Request("http://127.0.0.1/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer x" }, body });
async function run(n: number) {
  let next = 0;
  const worker = async () => { while (next++ < n) { const r = mode === "app" ? await app.fetch(mk()) : (await mk().bytes(), await upstreamFetch(0)); await r.arrayBuffer(); } };
  await Promise.all(Array.from({ length: 16 }, worker));
}
await run(20000);
console.log("MARK_START");
await run(20000);
console.log("MARK_END");
