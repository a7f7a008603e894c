/**
 * A receiver for OTLP/HTTP JSON, as the proxy's Deno OpenTelemetry exports it: keeps every body posted to
 * /v1/traces and /v1/metrics, and reads the spans back out.
 */

import { delay } from "./proxy.ts";

export type Attribute = { key: string; value: Record<string, unknown> };
export interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Attribute[];
  status?: { code?: number };
}

/** An attribute list as a plain record (OTLP JSON sends 64-bit integers as strings). */
export function attributes(list: Attribute[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list) {
    const [kind, raw] = Object.entries(value)[0] ?? [];
    out[key] = kind === "intValue" ? Number(raw) : raw;
  }
  return out;
}

export function startReceiver() {
  const bodies: { path: string; text: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    bodies.push({ path: new URL(request.url).pathname, text: await request.text() });
    return Response.json({});
  });
  const spans = () =>
    bodies.filter((body) => body.path === "/v1/traces").flatMap((body) =>
      JSON.parse(body.text).resourceSpans.flatMap((r: { scopeSpans: { spans: OtlpSpan[] }[] }) =>
        r.scopeSpans.flatMap((s) => s.spans)
      )
    ) as OtlpSpan[];
  return { server, bodies, spans, url: `http://127.0.0.1:${server.addr.port}` };
}

/** What `find` returns once it returns something, polled every 100 ms; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await delay(100);
  }
}
