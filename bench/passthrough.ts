/**
 * The floor: a bare pass-through with no framework and no logic, `Deno.serve` + `fetch` to one upstream base URL.
 * Forwards method, path, headers and body; streams the answer back as it arrives; a client that leaves aborts
 * the upstream request. Whatever the proxy costs on top of this is the proxy's own.
 *
 *   deno run -A bench/passthrough.ts http://127.0.0.1:UPSTREAM_PORT
 */

/** Serves the pass-through to `upstream` on a free port of 127.0.0.1 (bench/probe_start.ts serves it too). */
export function servePassthrough(upstream: string): void {
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`Listening on http://127.0.0.1:${port}`),
  }, async (request) => {
    const { pathname, search } = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete("host");
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const response = await fetch(upstream + pathname + search, {
      method: request.method,
      headers,
      body: hasBody ? await request.bytes() : undefined,
      signal: request.signal,
    });
    return new Response(response.body, { status: response.status, headers: response.headers });
  });

  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
}

if (import.meta.main) {
  const upstream = Deno.args[0];
  if (!upstream) throw new Error("usage: passthrough.ts UPSTREAM_BASE_URL");
  servePassthrough(upstream);
}
