/**
 * Fuzz-style: a few thousand generated malformed requests (seeded, so a failure replays) against a real proxy.
 * Every one must get a 4xx JSON error in the OpenAI envelope, none may reach the upstream, and the proxy must serve
 * a good request afterwards. Bounded by count and by time.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const KEY = "sk-fuzz-key";
const MAX_REQUESTS = 3000;
const MAX_MS = 5000;
const WORKERS = 16;
const MAX_BODY = 16 * 1024;

/** mulberry32: small, seeded, good enough to pick cases. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: BodyInit;
  readonly label: string;
}

function generator(seed: number) {
  const rand = random(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const text = (max: number) => {
    const alphabet = Array.from('abcXYZ019 _-{}[]":,\\/\u00e9\u4e2d\u{1f600}\u0000\n\t');
    let out = "";
    for (let i = int(max) + 1; i > 0; i--) out += alphabet[int(alphabet.length)];
    return out;
  };
  const junkValue = (): unknown =>
    pick([
      () => int(1e6) - 5e5,
      () => rand(),
      () => null,
      () => rand() < 0.5,
      () => text(20),
      () => [],
      () => [text(5), int(9)],
      () => ({ [text(4)]: text(4) }),
    ])();
  const goodChat = () => ({ model: "gpt-test", messages: [{ role: "user", content: text(30) }] });
  const routes = [
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/responses",
    "/responses",
    "/v1/embeddings",
  ];

  /** Each returns a body that is wrong for the route in at least one way the proxy itself must catch. */
  const defects: ((route: string) => { body: BodyInit; label: string })[] = [
    () => ({
      body: new Uint8Array(Array.from({ length: int(200) + 1 }, () => int(256))),
      label: "random bytes",
    }),
    () => ({ body: JSON.stringify(goodChat()).slice(0, int(40) + 1), label: "truncated JSON" }),
    () => ({
      body: pick(["", " ", "\n\t ", "null", "true", "42", '"text"', "[]", '[{"model":"gpt-test"}]']),
      label: "not an object",
    }),
    () => ({
      body: JSON.stringify({ ...goodChat(), model: pick([42, null, [], {}, true, ""]) }),
      label: "model type",
    }),
    () => ({ body: JSON.stringify({ ...goodChat(), model: text(300) }), label: "unknown model" }),
    () => {
      const body = JSON.stringify(goodChat());
      return {
        body: body.replace('"model":"gpt-test"', `"model":"gpt-test","model":${JSON.stringify(text(8))}`),
        label: "duplicate model",
      };
    },
    () => ({
      body: JSON.stringify({ ...goodChat(), stream: pick(["yes", 1, 0, [], {}, "true"]) }),
      label: "stream type",
    }),
    () => ({
      body: JSON.stringify({ ...goodChat(), input: "x", cache: pick(["no-store", 1, [], true]) }),
      label: "cache type",
    }),
    () => ({ body: JSON.stringify({ ...goodChat(), padding: "x".repeat(MAX_BODY) }), label: "too large" }),
    () => ({
      body: `{"model":${JSON.stringify(text(6) + "!")},"deep":${"[".repeat(3000)}${"]".repeat(3000)}}`,
      label: "deep nesting",
    }),
    (route) => {
      if (!route.includes("chat")) {
        return { body: JSON.stringify({ model: junkValue() }), label: "model junk" };
      }
      return {
        body: JSON.stringify({ model: "gpt-test", messages: pick([[], "hi", {}, 3, null]) }),
        label: "messages",
      };
    },
    (route) => {
      if (!route.includes("embeddings")) return { body: "{", label: "brace" };
      return { body: JSON.stringify({ model: "gpt-test", encoding_format: "float" }), label: "no input" };
    },
  ];

  return (): Case => {
    const roll = rand();
    const auth: Record<string, string> = rand() < 0.9
      ? { authorization: `Bearer ${KEY}` }
      : pick<Record<string, string>>([{}, { authorization: `Bearer sk-${int(1e9).toString(16)}` }, {
        "api-key": "nope",
      }]);
    if (roll < 0.06) {
      const path = `/v1/${encodeURIComponent(text(30))}`;
      return {
        method: pick(["GET", "POST", "PUT", "PATCH"]),
        path,
        headers: auth,
        body: undefined,
        label: "unknown route",
      };
    }
    if (roll < 0.09) {
      return { method: "GET", path: pick(routes), headers: auth, label: "wrong method" };
    }
    if (roll < 0.11) {
      const headers = { ...auth, "x-padding": "p".repeat(40_000) };
      return {
        method: "POST",
        path: pick(routes),
        headers,
        body: JSON.stringify(goodChat()),
        label: "huge header",
      };
    }
    const route = pick(routes);
    const { body, label } = pick(defects)(route);
    const headers: Record<string, string> = { ...auth };
    if (rand() < 0.7) {
      headers["content-type"] = pick([
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "x/y",
      ]);
    }
    return { method: "POST", path: route, headers, body, label };
  };
}

test("thousands of malformed requests each get a 4xx OpenAI-style JSON error; the proxy still serves", async () => {
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url)], [`max_body_bytes: ${MAX_BODY}`, `api_keys: [${KEY}]`]),
    { logLevel: "warn" },
  );
  const next = generator(0x5eed);
  const deadline = Date.now() + MAX_MS;
  let sent = 0;
  const problems: string[] = [];
  const labels = new Map<string, number>();

  const worker = async () => {
    while (sent < MAX_REQUESTS && Date.now() < deadline && problems.length < 5) {
      const c = next();
      sent++;
      labels.set(c.label, (labels.get(c.label) ?? 0) + 1);
      const response = await fetch(`${proxy.url}${c.path}`, {
        method: c.method,
        headers: c.headers,
        body: c.body,
      });
      const text = await response.text();
      const where = `${c.label}: ${c.method} ${c.path.slice(0, 40)} -> ${response.status} ${
        text.slice(0, 120)
      }`;
      let error: Record<string, unknown> | undefined;
      try {
        error = JSON.parse(text).error;
      } catch {
        // reported below
      }
      const ok = response.status >= 400 && response.status < 500 &&
        (response.headers.get("content-type") ?? "").startsWith("application/json") &&
        error !== undefined && typeof error.message === "string" && typeof error.type === "string" &&
        "param" in error && "code" in error;
      if (!ok) problems.push(where);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));

  assert.deepEqual(problems, [], "every malformed request gets a 4xx JSON error");
  assert.ok(sent >= 500, `only ${sent} requests in ${MAX_MS} ms`);
  assert.ok(labels.size >= 12, `cases covered: ${[...labels.keys()].join(", ")}`);
  assert.equal(sim.count(), 0, "no malformed request reached the upstream");
  assert.deepEqual(
    proxy.logs.filter((line) => JSON.parse(line).level === "error"),
    [],
    "nothing logged as an error",
  );

  const good = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "still here?" }] }),
  });
  assert.equal(good.status, 200);
  assert.match((await good.json()).choices[0].message.content, /still here\?/);
});
