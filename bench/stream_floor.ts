/**
 * The floor for the stream row: the least a gateway that sees every streamed event in JavaScript must do, and
 * nothing else. It reads and parses the client's JSON body, sets `model`, writes the request to the first endpoint
 * of the first model group over a kept-alive TCP connection of its own, reads the answer's chunked body one socket
 * read at a time (`upstream/socket_read.ts`), copies each chunk's data out and enqueues it into the client's
 * stream, which flows while the client keeps up (as the proxy's pass-through does). No framework, failover, SSE
 * framing, masking, usage, deadlines or error handling beyond dropping a broken connection.
 *
 * What the proxy costs per stream above this is its own request path and per-stream state; what this costs above
 * the bare pass-through (whose body never enters JavaScript) is the price of seeing the events at all. It takes
 * the proxy's command line, so `bench/stream_ab.ts --main bench/stream_floor.ts --main main.ts` compares them:
 *
 *   deno run -A bench/stream_floor.ts --config FILE [--port 0] [--log-level LEVEL]
 *
 * `bench/inproc.ts --stream --floor` loads its handler in-process beside the proxy's builds (`useTarget`).
 *
 * `bench/raw/stream_floor.ts` serves the same handler on a JavaScript HTTP/1.1 engine instead of `Deno.serve`.
 */

import { gatewayArgs, type GatewayTarget } from "./gateway_args.ts";
import { socketRead } from "../src/upstream/socket_read.ts";
import { hexValue } from "../src/upstream/http1_wire.ts";

/** Where the floor forwards: the command line's config when it runs, `useTarget` when loaded in a process. */
let target: GatewayTarget | undefined;

export function useTarget(to: GatewayTarget): void {
  target = to;
}
const encoder = new TextEncoder();
const CR = 13;
const LF = 10;
const SEMICOLON = 59;

/** An upstream connection and the bytes read from it but not yet consumed (`buffer[start..end)`). */
class Upstream {
  buffer = new Uint8Array(4096);
  start = 0;
  end = 0;
  constructor(readonly conn: Deno.TcpConn) {}

  /** One socket read behind the bytes buffered; resolves with the count, 0 at the end. */
  read(): Promise<number> {
    if (this.start === this.end) this.start = this.end = 0;
    else if (this.end === this.buffer.length) {
      this.buffer.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    return socketRead(this.conn, this.buffer.subarray(this.end)).then((read) => {
      this.end += read ?? 0;
      return read ?? 0;
    });
  }

  /** The offset of the CRLF ending the line at `start`, or -1 when it is not buffered yet. */
  lineEnd(): number {
    for (let at = this.start; at < this.end - 1; at++) {
      if (this.buffer[at] === CR && this.buffer[at + 1] === LF) return at;
    }
    return -1;
  }
}

const idle: Upstream[] = [];

async function readHead(upstream: Upstream): Promise<void> {
  for (let from = upstream.start;;) {
    const { buffer, end } = upstream;
    for (let at = from; at + 3 < end; at++) {
      if (buffer[at] === CR && buffer[at + 1] === LF && buffer[at + 2] === CR && buffer[at + 3] === LF) {
        upstream.start = at + 4;
        return;
      }
    }
    // A read may move the buffered bytes to the buffer's start: what was scanned is kept relative to `start`.
    const scanned = Math.max(0, end - 3 - upstream.start);
    if (!await upstream.read()) throw new Error("the upstream closed the connection");
    from = upstream.start + scanned;
  }
}

/** The answer's chunked body as a stream that flows: each chunk's data is copied out and enqueued. */
function chunkedBody(upstream: Upstream): ReadableStream<Uint8Array> {
  let left = 0;
  let crlf = false; // the CRLF after a chunk's data is still to be skipped
  let done = false;
  let waiting = false;
  let controller: ReadableStreamDefaultController<Uint8Array>;
  let release: (() => void) | undefined;
  /** The next chunk data buffered, null at the body's end, undefined when more must be read. */
  const take = (): Uint8Array | null | undefined => {
    for (;;) {
      if (left > 0) {
        if (upstream.start === upstream.end) return undefined;
        const end = Math.min(upstream.end, upstream.start + left);
        const data = upstream.buffer.slice(upstream.start, end);
        left -= end - upstream.start;
        upstream.start = end;
        crlf = left === 0;
        return data;
      }
      if (crlf) {
        if (upstream.end - upstream.start < 2) return undefined;
        upstream.start += 2;
        crlf = false;
      }
      const at = upstream.lineEnd();
      if (at < 0) return undefined;
      // Hex digits up to the line's end or an extension (the bench's upstream sends plain sizes).
      let size = 0;
      for (let i = upstream.start; i < at && upstream.buffer[i] !== SEMICOLON; i++) {
        size = size * 16 + hexValue(upstream.buffer[i]);
      }
      if (size === 0) {
        if (upstream.end < at + 4) return undefined; // the blank line that ends the body
        upstream.start = at + 4;
        return null;
      }
      left = size;
      upstream.start = at + 2;
    }
  };
  const flow = (): void => {
    waiting = false;
    if (done) return;
    for (let data = take(); data !== undefined; data = take()) {
      if (data === null) {
        done = true;
        controller.close();
        idle.push(upstream);
        release?.();
        return;
      }
      controller.enqueue(data);
    }
    if (controller.desiredSize! < 0) {
      release?.();
      release = undefined;
      return;
    }
    waiting = true;
    upstream.read().then((read) => read ? flow() : cut(), cut);
  };
  const cut = () => {
    if (done) return;
    done = true;
    controller.error(new Error("the upstream stream was cut"));
    upstream.conn.close();
  };
  return new ReadableStream<Uint8Array>({
    start: (opened) => {
      controller = opened;
    },
    pull: () => {
      if (!waiting) flow();
      if (waiting) return new Promise<void>((resolve) => release = resolve);
    },
    cancel: () => {
      done = true;
      upstream.conn.close();
    },
  }, { highWaterMark: 0 });
}

/** Writes the request on `upstream` (a new connection when undefined) and reads the answer's head. */
async function call(upstream: Upstream | undefined, json: Uint8Array): Promise<Upstream> {
  const { url, endpoint } = target!;
  upstream ??= new Upstream(await Deno.connect({ hostname: url.hostname, port: Number(url.port) }));
  const head = encoder.encode(
    `POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${endpoint.apiKey}\r\n` +
      `content-type: application/json\r\ncontent-length: ${json.length}\r\n\r\n`,
  );
  const message = new Uint8Array(head.length + json.length);
  message.set(head);
  message.set(json, head.length);
  try {
    for (let written = 0; written < message.length;) {
      written += await upstream.conn.write(message.subarray(written));
    }
    await readHead(upstream);
    return upstream;
  } catch (error) {
    upstream.conn.close();
    throw error;
  }
}

/** The floor's handler, exported so `bench/raw/stream_floor.ts` serves the same gateway on the raw engine. */
export async function floorHandler(request: Request): Promise<Response> {
  const stream = await floorStream(JSON.parse(await request.text()));
  return new Response(stream, { headers: { "content-type": "text/event-stream" } });
}

/** The floor's work for a parsed request body: the upstream's answer as a stream of its chunks' data. */
export async function floorStream(body: Record<string, unknown>): Promise<ReadableStream<Uint8Array>> {
  // Every answer is asked streamed: memory.ts checks each build with a JSON request first.
  const json = encoder.encode(JSON.stringify({ ...body, model: target!.endpoint.model, stream: true }));
  // A kept-alive connection the upstream closed meanwhile fails at once: the request goes again on a new one.
  const reused = idle.pop();
  const upstream =
    await (reused ? call(reused, json).catch(() => call(undefined, json)) : call(undefined, json));
  return chunkedBody(upstream);
}

if (import.meta.main) {
  const args = await gatewayArgs();
  useTarget(args);
  Deno.serve({
    hostname: "127.0.0.1",
    port: args.port,
    onListen: ({ port }) => console.log(`Listening on http://127.0.0.1:${port}`),
  }, floorHandler);
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
}
