/**
 * `bench/stream_floor.ts`'s work served by the raw engine's lean contract (`serveLean`: no web `Request` or
 * `Response`, the parsed head and body bytes in, a status, headers and a stream out): the ceiling of what an own
 * engine could save per stream if the app did not take web objects. Its folder names it in the A/B tools:
 *
 *   deno run -A bench/stream_ab.ts --nginx --main bench/stream_floor.ts --main bench/raw/lean/stream_floor.ts
 */

import { floorStream, useTarget } from "../../stream_floor.ts";
import { gatewayArgs } from "../../gateway_args.ts";
import { serveLean } from "../http1_server.ts";

const decoder = new TextDecoder();
const args = await gatewayArgs();
useTarget(args);
const addr = serveLean("127.0.0.1", args.port, async (request) => ({
  status: 200,
  headers: { "content-type": "text/event-stream" },
  body: await floorStream(JSON.parse(decoder.decode(request.body))),
}));
console.log(`Listening on http://127.0.0.1:${addr.port}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
