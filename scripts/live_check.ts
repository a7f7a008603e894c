/**
 * Checks a running LLMProxy end to end: models, chat, streaming, cache (the second identical call is a HIT, plain
 * and streamed), Responses (with a follow-up on previous_response_id), auth, stats, health and metrics. Prints a
 * pass/fail table; exit code 0 when nothing failed, 1 when something did, 2 on bad usage.
 *
 *   deno task live-check --proxy-url http://127.0.0.1:5000 [--model NAME] [--api-key K] [--admin-key K]
 *
 * Keys may also come from $LLMPROXY_API_KEY / $LLMPROXY_ADMIN_KEY (better than the command line, which other users
 * of the machine can see). Keys are never printed.
 */

import { readFlags } from "../src/cli_flags.ts";

const USAGE =
  `Usage: deno task live-check --proxy-url URL [--model NAME] [--api-key KEY] [--admin-key KEY] [--timeout S]

  --proxy-url URL   the proxy to check, e.g. http://127.0.0.1:5000
  --model NAME      model group to use (default: the first one /v1/models lists)
  --api-key KEY     client key, if the proxy has api_keys (default: $LLMPROXY_API_KEY)
  --admin-key KEY   admin key for /stats and /metrics (default: $LLMPROXY_ADMIN_KEY, else the client key)
  --timeout S       seconds per request (default 60)
`;

export type Result = "PASS" | "FAIL" | "SKIP";

export interface CheckRow {
  readonly name: string;
  readonly result: Result;
  readonly ms: number;
  readonly detail: string;
}

export interface CheckOptions {
  readonly proxyUrl: string;
  readonly model?: string;
  readonly apiKey?: string;
  readonly adminKey?: string;
  readonly timeoutMs: number;
}

class Skip extends Error {}

/** Runs every check in order; a failed check never stops the ones after it. */
export async function runChecks(options: CheckOptions): Promise<CheckRow[]> {
  const base = options.proxyUrl.replace(/\/+$/, "");
  const v1 = base.endsWith("/v1") ? base : `${base}/v1`;
  const root = v1.slice(0, -3);
  const nonce = crypto.randomUUID().slice(0, 8);
  const rows: CheckRow[] = [];
  let model = options.model;

  const request = async (path: string, init: RequestInit & { key?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const key = init.key === undefined ? options.apiKey : init.key;
    if (key) headers.set("authorization", `Bearer ${key}`);
    if (init.body) headers.set("content-type", "application/json");
    return await fetch(path, { ...init, headers, signal: AbortSignal.timeout(options.timeoutMs) });
  };
  const json = async (response: Response) => {
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`HTTP ${response.status}, not JSON: ${text.slice(0, 120)}`);
    }
  };
  const expectOk = async (response: Response) => {
    if (response.status !== 200) {
      const body = await response.text();
      let message = body.slice(0, 200);
      try {
        message = JSON.parse(body).error?.message ?? message;
      } catch { /* not JSON */ }
      throw new Error(`HTTP ${response.status}: ${message}`);
    }
    return response;
  };
  const check = async (name: string, run: () => Promise<string>) => {
    const started = performance.now();
    let result: Result = "PASS";
    let detail: string;
    try {
      detail = await run();
    } catch (error) {
      result = error instanceof Skip ? "SKIP" : "FAIL";
      detail = error instanceof Error ? error.message : String(error);
    }
    rows.push({ name, result, ms: Math.round(performance.now() - started), detail });
  };
  const chatBody = (content: string, stream = false) =>
    JSON.stringify({ model, stream, messages: [{ role: "user", content }] });
  /** Reads an SSE answer; `started` is when the request was sent (for the time to the first chunk). */
  const readStream = async (response: Response, started: number) => {
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let firstMs: number | undefined;
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      firstMs ??= performance.now() - started;
      text += value;
    }
    const events = text.split(/\r?\n\r?\n/).filter((event) => event.trim() !== "");
    let content = "";
    for (const event of events) {
      const data = event.split(/\r?\n/).find((line) => line.startsWith("data:"))?.slice(5).trim();
      if (!data || data === "[DONE]") continue;
      const parsed = JSON.parse(data);
      if (parsed.error) {
        throw new Error(`stream error event: ${parsed.error.message ?? JSON.stringify(parsed.error)}`);
      }
      content += parsed.choices?.[0]?.delta?.content ?? "";
    }
    return { text, events: events.length, content, done: /data: \[DONE\]/.test(text), firstMs: firstMs ?? 0 };
  };

  await check("models", async () => {
    const list = await json(await expectOk(await request(`${v1}/models`)));
    const ids: string[] = (list.data ?? []).map((entry: { id: string }) => entry.id);
    if (ids.length === 0) throw new Error("no model groups listed");
    if (model !== undefined && !ids.includes(model)) {
      throw new Error(`'${model}' is not among ${ids.join(", ")}`);
    }
    model ??= ids[0];
    return `${ids.length} group(s); using '${model}'`;
  });
  if (model === undefined) {
    rows.push({ name: "(rest)", result: "FAIL", ms: 0, detail: "no model to test with; pass --model" });
    return rows;
  }

  await check("chat", async () => {
    const response = await expectOk(
      await request(`${v1}/chat/completions`, {
        method: "POST",
        body: chatBody(`live-check ${nonce}: say OK`),
      }),
    );
    const answer = await json(response);
    const message = answer.choices?.[0]?.message;
    if (!message) throw new Error("no choices[0].message in the answer");
    return `endpoint ${response.headers.get("x-llmproxy-endpoint") ?? "?"}, ${
      answer.usage?.total_tokens ?? "?"
    } tokens`;
  });

  await check("streaming", async () => {
    const started = performance.now();
    const response = await expectOk(
      await request(`${v1}/chat/completions`, {
        method: "POST",
        body: chatBody(`live-check ${nonce}: stream OK`, true),
      }),
    );
    if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
      throw new Error(`content-type is ${response.headers.get("content-type")}, not text/event-stream`);
    }
    const stream = await readStream(response, started);
    if (!stream.done) throw new Error(`no 'data: [DONE]' after ${stream.events} events`);
    if (stream.content === "") throw new Error("the stream carried no content");
    return `${stream.events} events, first after ${Math.round(stream.firstMs)} ms`;
  });

  const cacheCheck = async (stream: boolean) => {
    const body = chatBody(`live-check ${nonce}: cache ${stream ? "stream" : "plain"}`, stream);
    const send = async () => {
      const started = performance.now();
      const response = await expectOk(await request(`${v1}/chat/completions`, { method: "POST", body }));
      const status = response.headers.get("x-llmproxy-cache");
      if (stream) {
        const read = await readStream(response, started);
        if (!read.done) throw new Error("a cache stream ended without [DONE]");
      } else await response.text();
      return { status, ms: Math.round(performance.now() - started) };
    };
    const first = await send();
    if (first.status === null) {
      throw new Skip("no x-llmproxy-cache header: this proxy does not report caching");
    }
    if (first.status === "BYPASS") throw new Skip("cache is off on this proxy (BYPASS)");
    const second = await send();
    if (second.status !== "HIT") throw new Error(`second identical call was ${second.status}, expected HIT`);
    return `${first.status} ${first.ms} ms, then HIT ${second.ms} ms`;
  };
  await check("cache", () => cacheCheck(false));
  await check("stream cache", () => cacheCheck(true));

  await check("responses", async () => {
    const first = await json(
      await expectOk(
        await request(`${v1}/responses`, {
          method: "POST",
          body: JSON.stringify({ model, input: `live-check ${nonce}: say OK` }),
        }),
      ),
    );
    if (first.object !== "response" || typeof first.id !== "string") {
      throw new Error("the answer is not a response");
    }
    const follow = await request(`${v1}/responses`, {
      method: "POST",
      body: JSON.stringify({ model, input: "and again", previous_response_id: first.id }),
    });
    const second = await json(await expectOk(follow));
    if (second.object !== "response") throw new Error("the follow-up answer is not a response");
    return `${first.status ?? "?"}; follow-up on previous_response_id ${second.status ?? "?"}`;
  });

  await check("auth", async () => {
    if (!options.apiKey) throw new Skip("no --api-key given");
    const response = await request(`${v1}/models`, { key: null });
    await response.body?.cancel();
    if (response.status !== 401) {
      throw new Error(`a request without a key got HTTP ${response.status}, not 401`);
    }
    return "a request without a key gets 401";
  });

  const adminKey = options.adminKey ?? options.apiKey;
  await check("stats", async () => {
    const stats = await json(await expectOk(await request(`${root}/stats`, { key: adminKey ?? null })));
    const endpoints: { group: string; state: string }[] = stats.endpoints ?? [];
    const mine = endpoints.filter((endpoint) => endpoint.group === model);
    if (mine.length === 0) throw new Error(`no endpoints of '${model}' in /stats`);
    const available = mine.filter((endpoint) => endpoint.state === "available").length;
    return `${mine.length} endpoint(s) of '${model}', ${available} available; store ${
      stats.store?.status ?? "?"
    }`;
  });

  await check("health", async () => {
    const response = await request(`${root}/health`, { key: null });
    const health = await json(response);
    if (response.status !== 200) throw new Error(`HTTP ${response.status}: status ${health.status}`);
    return `status ${health.status}, store ${health.store?.kind ?? "?"} ${health.store?.status ?? "?"}`;
  });

  await check("metrics", async () => {
    const text = await (await expectOk(await request(`${root}/metrics`, { key: adminKey ?? null }))).text();
    if (!text.includes("llmproxy_requests_total")) throw new Error("no llmproxy_requests_total series");
    return `${text.split("\n").filter((line) => line.startsWith("llmproxy_")).length} series lines`;
  });
  return rows;
}

/** The rows as an aligned text table with a summary line. */
export function formatTable(rows: readonly CheckRow[]): string {
  const width = Math.max(5, ...rows.map((row) => row.name.length));
  const lines = [`${"check".padEnd(width)}  result  ${"time".padStart(8)}  detail`];
  lines.push("-".repeat(width + 28));
  for (const row of rows) {
    lines.push(
      `${row.name.padEnd(width)}  ${row.result.padEnd(6)}  ${`${row.ms} ms`.padStart(8)}  ${row.detail}`,
    );
  }
  const count = (result: Result) => rows.filter((row) => row.result === result).length;
  lines.push("");
  lines.push(`${count("PASS")} passed, ${count("FAIL")} failed, ${count("SKIP")} skipped`);
  return lines.join("\n");
}

async function main(args: string[]): Promise<number> {
  const flags = readFlags(args, {
    "proxy-url": { type: "string" },
    model: { type: "string" },
    "api-key": { type: "string" },
    "admin-key": { type: "string" },
    timeout: { type: "string", default: "60" },
    help: { type: "boolean", default: false },
  }, USAGE);
  if (typeof flags === "number") return flags;
  const proxyUrl = flags["proxy-url"];
  const timeout = Number(flags.timeout);
  if (!proxyUrl || !/^https?:\/\//.test(proxyUrl) || !(timeout > 0)) {
    console.error(`--proxy-url must be an http(s) URL and --timeout a positive number\n\n${USAGE}`);
    return 2;
  }
  const rows = await runChecks({
    proxyUrl,
    model: flags.model,
    apiKey: flags["api-key"] ?? Deno.env.get("LLMPROXY_API_KEY"),
    adminKey: flags["admin-key"] ?? Deno.env.get("LLMPROXY_ADMIN_KEY"),
    timeoutMs: timeout * 1000,
  });
  console.log(`LLMProxy live check of ${proxyUrl}\n`);
  console.log(formatTable(rows));
  return rows.some((row) => row.result === "FAIL") ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
