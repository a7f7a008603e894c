/**
 * An upstream whose streamed answer ends later than its last event: each request gets `reads` (each sent
 * `afterMs` after the answer started), then the body's end `endMs` after the start. A client that stops reading at
 * the stream's terminal event (the `openai` client cancels at `[DONE]`) leaves before that end. `calls` counts the
 * requests, `ended` the answers whose end was sent.
 */

export interface TimedRead {
  readonly afterMs: number;
  readonly text: string;
}

export interface LingeringUpstream extends AsyncDisposable {
  readonly url: string;
  readonly calls: number;
  readonly ended: number;
}

const encoder = new TextEncoder();

export function lingeringUpstream(reads: readonly TimedRead[], endMs: number): LingeringUpstream {
  const counts = { calls: 0, ended: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    await request.arrayBuffer();
    counts.calls++;
    const timers: ReturnType<typeof setTimeout>[] = [];
    const at = (ms: number, step: () => void) => {
      if (ms <= 0) step();
      else timers.push(setTimeout(step, ms));
    };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const read of reads) at(read.afterMs, () => controller.enqueue(encoder.encode(read.text)));
        at(endMs, () => {
          counts.ended++;
          controller.close();
        });
      },
      cancel: () => timers.forEach(clearTimeout),
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get calls() {
      return counts.calls;
    },
    get ended() {
      return counts.ended;
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
