/**
 * An upstream that takes a request body no faster than `bytesPerSecond`, read straight off its TCP socket (not
 * through an HTTP server that might read ahead), then answers a file object. With it a test sees whether a slow
 * upstream slows the client's upload down, or the proxy takes the upload in anyway and holds it.
 * Requests must come chunked (the proxy sends uploads so); `received` counts body bytes read, framing included.
 */

const LAST_CHUNK = "\r\n0\r\n\r\n";
const decoder = new TextDecoder("latin1");

export interface SlowUpstream extends AsyncDisposable {
  readonly url: string;
  readonly received: number;
}

export function slowUpstream(bytesPerSecond: number): SlowUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const state = { received: 0 };
  const serve = async (conn: Deno.Conn) => {
    open.add(conn);
    const buffer = new Uint8Array(64 * 1024);
    let text = "";
    try {
      // The head, and whatever of the body came with it.
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) return;
        text += decoder.decode(buffer.subarray(0, n));
      }
      let tail = text.slice(text.indexOf("\r\n\r\n") + 4);
      state.received += tail.length;
      const started = performance.now();
      while (!tail.endsWith(LAST_CHUNK)) {
        const due = started + (state.received / bytesPerSecond) * 1000;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
        const n = await conn.read(buffer);
        if (n === null) return;
        state.received += n;
        tail = (tail + decoder.decode(buffer.subarray(0, n))).slice(-LAST_CHUNK.length);
      }
      const body = JSON.stringify({
        id: "file-slow",
        object: "file",
        bytes: state.received,
        purpose: "batch",
      });
      await conn.write(
        new TextEncoder().encode(
          "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n" +
            `content-length: ${body.length}\r\n\r\n${body}`,
        ),
      );
    } catch {
      // the proxy went away
    } finally {
      open.delete(conn);
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) serve(conn);
    } catch { /* listener closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get received() {
      return state.received;
    },
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
      await accepting;
    },
  };
}
