/**
 * `bench/minimal_gateway.ts`'s work served by the raw engine's lean contract (`serveLean`: no web `Request` or
 * `Response`): the ceiling of what an own engine could save per JSON request if the app did not take web objects.
 *
 *   deno run -A bench/ab.ts --main bench/minimal_gateway.ts --main bench/raw/lean/minimal_gateway.ts
 */

import { minimalCall, port } from "../../minimal_gateway.ts";
import { serveLean } from "../http1_server.ts";

const decoder = new TextDecoder();
const addr = serveLean("127.0.0.1", port, (request) => {
  const body = JSON.parse(decoder.decode(request.body));
  return minimalCall(body, request.headers, request.signal);
});
console.log(`Listening on http://127.0.0.1:${addr.port}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
