/**
 * A raw HTTP/1.1 server on 127.0.0.1 for upstreams that must misbehave in ways a real server will not: `serve` owns
 * each accepted connection and writes what it likes; `read()` waits for the next whole request (head and
 * content-length body), false when the client closed; `read.peek()` resolves once any byte of a next request is
 * there. Disposing closes the listener and every open connection.
 */
export function rawServer(
  serve: (conn: Deno.Conn, read: (() => Promise<boolean>) & { peek(): Promise<boolean> }) => Promise<void>,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      let buffered = "";
      let pending: Promise<boolean> | undefined;
      const more = async () => {
        const buffer = new Uint8Array(16 * 1024);
        const n = await conn.read(buffer);
        if (n === null) return false;
        buffered += new TextDecoder().decode(buffer.subarray(0, n));
        return true;
      };
      /** Resolves true once any byte of a next request is there, false at the end. */
      const peek = () => pending ??= buffered.length > 0 ? Promise.resolve(true) : more();
      const read = Object.assign(async () => {
        for (;;) {
          const end = buffered.indexOf("\r\n\r\n");
          if (end >= 0) {
            const length = Number(/content-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
            if (buffered.length >= end + 4 + length) {
              buffered = buffered.slice(end + 4 + length);
              return true;
            }
          }
          const got = pending ? await pending : await more();
          pending = undefined;
          if (!got) return false;
        }
      }, { peek });
      serve(conn, read).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await serving;
    },
  };
}
