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
 */

import { gatewayArgs } from "./gateway_args.ts";

const { port, endpoint, url } = await gatewayArgs();
const decoder = new TextDecoder();
const DROPPED = new Set(["host", "content-length", "authorization", "connection"]);

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) => console.log(`Listening on http://127.0.0.1:${port}`),
}, async (request) => {
  const body = JSON.parse(decoder.decode(await request.bytes()));
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    if (!DROPPED.has(name)) headers[name] = value;
  });
  headers.authorization = `Bearer ${endpoint.apiKey}`;
  const answer = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ ...body, model: endpoint.model }),
    signal: request.signal,
  });
  const bytes = await answer.bytes();
  JSON.parse(decoder.decode(bytes));
  const out: Record<string, string> = {};
  answer.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "date") out[name] = value;
  });
  return new Response(bytes, { status: answer.status, headers: out });
});

for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
