/**
 * Shows what the streaming cache does: the same streamed chat request twice against a running proxy. The first
 * call streams from the upstream (MISS); the second is replayed from the cache (HIT) with the same events in the
 * same order. Prints time to first chunk, total time and event counts for both.
 *
 *   deno task demo                                   # in one terminal
 *   deno task stream-cache-demo --proxy-url http://127.0.0.1:5000 [--model demo] [--prompt TEXT]
 */

import { readFlags } from "../src/cli_flags.ts";

const USAGE =
  `Usage: deno task stream-cache-demo --proxy-url URL [--model NAME] [--prompt TEXT] [--api-key KEY]

  --proxy-url URL  a running proxy, e.g. http://127.0.0.1:5000 (deno task demo)
  --model NAME     model group (default: the first one /v1/models lists)
  --prompt TEXT    the question (default: a fresh one each run, so the first call is a MISS)
  --api-key KEY    client key, if the proxy has api_keys (default: $LLMPROXY_API_KEY)
`;

interface Run {
  readonly cache: string;
  readonly firstChunkMs: number;
  readonly totalMs: number;
  readonly events: string[];
}

async function streamOnce(url: string, body: string, apiKey: string | undefined): Promise<Run> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const started = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body });
  if (response.status !== 200) {
    throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
  }
  let firstChunkMs: number | undefined;
  let text = "";
  for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
    firstChunkMs ??= performance.now() - started;
    text += chunk;
  }
  return {
    cache: response.headers.get("x-llmproxy-cache") ?? "(none)",
    firstChunkMs: firstChunkMs ?? 0,
    totalMs: performance.now() - started,
    events: text.split(/\r?\n\r?\n/).filter((event) => event.trim() !== ""),
  };
}

function contentOf(events: readonly string[]): string {
  let content = "";
  for (const event of events) {
    const data = event.replace(/^data: ?/, "");
    if (data === "[DONE]") continue;
    try {
      content += JSON.parse(data).choices?.[0]?.delta?.content ?? "";
    } catch { /* not JSON */ }
  }
  return content;
}

async function main(args: string[]): Promise<number> {
  const flags = readFlags(args, {
    "proxy-url": { type: "string" },
    model: { type: "string" },
    prompt: { type: "string" },
    "api-key": { type: "string" },
    help: { type: "boolean", default: false },
  }, USAGE);
  if (typeof flags === "number") return flags;
  const proxyUrl = flags["proxy-url"]?.replace(/\/+$/, "").replace(/\/v1$/, "");
  if (!proxyUrl || !/^https?:\/\//.test(proxyUrl)) {
    console.error(`--proxy-url must be an http(s) URL\n\n${USAGE}`);
    return 2;
  }
  const apiKey = flags["api-key"] ?? Deno.env.get("LLMPROXY_API_KEY");
  let model = flags.model;
  if (model === undefined) {
    const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    const list = await (await fetch(`${proxyUrl}/v1/models`, { headers })).json();
    model = list.data?.[0]?.id;
    if (!model) {
      console.error("the proxy lists no model groups; pass --model");
      return 1;
    }
  }
  const prompt = flags.prompt ?? `Tell me a short story about caching (${crypto.randomUUID().slice(0, 8)})`;
  const body = JSON.stringify({ model, stream: true, messages: [{ role: "user", content: prompt }] });

  console.log(`Streaming the same request twice through ${proxyUrl} (model '${model}')\n`);
  const first = await streamOnce(proxyUrl, body, apiKey);
  const second = await streamOnce(proxyUrl, body, apiKey);
  const row = (name: string, run: Run) =>
    `${name.padEnd(8)}  ${run.cache.padEnd(9)}  ${`${run.firstChunkMs.toFixed(1)} ms`.padStart(12)}  ${
      `${run.totalMs.toFixed(1)} ms`.padStart(10)
    }  ${String(run.events.length).padStart(6)}`;
  console.log(
    `${"call".padEnd(8)}  ${"cache".padEnd(9)}  ${"first chunk".padStart(12)}  ${
      "total".padStart(10)
    }  events`,
  );
  console.log(row("first", first));
  console.log(row("second", second));
  const same = first.events.length === second.events.length &&
    contentOf(first.events) === contentOf(second.events);
  console.log("");
  console.log(`Replay carries the same content in the same number of events: ${same ? "yes" : "NO"}`);
  if (second.cache === "HIT") {
    console.log(
      `Cached replay: ${(first.totalMs / Math.max(second.totalMs, 0.1)).toFixed(1)}x faster in total.`,
    );
  } else {
    console.log(`The second call was ${second.cache}, not HIT: is general_settings.cache on?`);
  }
  return second.cache === "HIT" && same ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
