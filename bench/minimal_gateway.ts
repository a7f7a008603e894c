/**
 * A second floor for bisecting the proxy's cost: the least any gateway that routes on the body must do, and
 * nothing else. It reads the client's JSON body and parses it, rewrites `model` for the first endpoint of the
 * first model group, calls the upstream with the endpoint's key, reads the answer, checks it parses as JSON, and
 * answers with its bytes and headers. No framework, failover, cache, metrics or deadlines.
 *
 * It takes the proxy's command line, so `bench/ab.ts --main bench/minimal_gateway.ts --main main.ts` compares it
 * with the proxy and the bare pass-through in interleaved rounds:
 *
 *   deno run -A bench/minimal_gateway.ts --config FILE [--port 0] [--log-level LEVEL]
 *
 * `bench/raw/minimal_gateway.ts` serves the same handler on a JavaScript HTTP/1.1 engine instead of `Deno.serve`.
 */

import { gatewayArgs } from "./gateway_args.ts";

export const { port, endpoint, url } = await gatewayArgs();
const decoder = new TextDecoder();
const DROPPED = new Set(["host", "content-length", "authorization", "connection"]);

/** The gateway's handler, exported so `bench/raw/minimal_gateway.ts` serves it on the raw engine. */
export async function minimalHandler(request: Request): Promise<Response> {
  const body = JSON.parse(decoder.decode(await request.bytes()));
  const answer = await minimalCall(body, request.headers, request.signal);
  return new Response(answer.body, answer);
}

/** The gateway's work on a parsed body: the upstream's answer, checked as JSON, with the headers to send back. */
export async function minimalCall(
  body: Record<string, unknown>,
  from: Iterable<[string, string]>,
  signal: AbortSignal,
): Promise<{ status: number; headers: Record<string, string>; body: Uint8Array<ArrayBuffer> }> {
  const headers: Record<string, string> = {};
  for (const [name, value] of from) if (!DROPPED.has(name)) headers[name] = value;
  headers.authorization = `Bearer ${endpoint.apiKey}`;
  const answer = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ ...body, model: endpoint.model }),
    signal,
  });
  const bytes = await answer.bytes();
  JSON.parse(decoder.decode(bytes));
  const out: Record<string, string> = {};
  answer.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "date") out[name] = value;
  });
  return { status: answer.status, headers: out, body: bytes };
}

if (import.meta.main) {
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: ({ port }) => console.log(`Listening on http://127.0.0.1:${port}`),
  }, minimalHandler);
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
}
