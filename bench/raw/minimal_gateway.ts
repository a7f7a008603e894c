/**
 * `bench/minimal_gateway.ts` (the same handler) served by the raw engine (`http1_server.ts`) instead of
 * `Deno.serve`: what an own HTTP/1.1 engine would save per JSON request. Its folder names it in the A/B tools:
 *
 *   deno run -A bench/ab.ts --main bench/minimal_gateway.ts --main bench/raw/minimal_gateway.ts
 */

import { minimalHandler, port } from "../minimal_gateway.ts";
import { serveRaw } from "./http1_server.ts";

const addr = serveRaw("127.0.0.1", port, minimalHandler);
console.log(`Listening on http://127.0.0.1:${addr.port}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
