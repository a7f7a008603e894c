/**
 * `bench/stream_floor.ts` (the same handler and upstream client) served by the raw engine (`http1_server.ts`)
 * instead of `Deno.serve`: what an own HTTP/1.1 engine would save per stream. Its folder names it in the A/B tools:
 *
 *   deno run -A bench/stream_ab.ts --nginx --main bench/stream_floor.ts --main bench/raw/stream_floor.ts
 */

import { floorHandler, useTarget } from "../stream_floor.ts";
import { gatewayArgs } from "../gateway_args.ts";
import { serveRaw } from "./http1_server.ts";

const args = await gatewayArgs();
useTarget(args);
const addr = serveRaw("127.0.0.1", args.port, floorHandler);
console.log(`Listening on http://127.0.0.1:${addr.port}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
