/**
 * A TCP relay on 127.0.0.1 in front of an upstream (the sim) that can lose an answer at the worst moment for a
 * client: `dropNext()` makes it pass the next request on whole, wait until the upstream's answer begins (the
 * upstream has taken the request and acted on it), and then close the client's connection without a byte of that
 * answer, as a server or a balancer in front of it that closes a kept-alive connection just then would. Every other
 * byte passes both ways as it comes. `accepted` counts the client connections. Disposing closes everything.
 */
export function droppingRelay(upstream: string) {
  const target = new URL(upstream);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let armed = false;
  let accepted = 0;
  const close = (conn: Deno.Conn) => {
    open.delete(conn);
    try {
      conn.close();
    } catch { /* closed */ }
  };
  const relay = async (client: Deno.Conn) => {
    const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
    open.add(server);
    let dropping = false;
    const end = () => {
      close(client);
      close(server);
    };
    const up = (async () => {
      for await (const chunk of client.readable.values({ preventCancel: true })) {
        if (armed) {
          armed = false;
          dropping = true;
        }
        await server.write(chunk);
      }
    })();
    const down = (async () => {
      for await (const chunk of server.readable.values({ preventCancel: true })) {
        if (dropping) return;
        await client.write(chunk);
      }
    })();
    await Promise.race([up, down]).catch(() => {});
    end();
    await Promise.allSettled([up, down]);
  };
  const serving = (async () => {
    for await (const client of listener) {
      accepted++;
      open.add(client);
      relay(client).catch(() => close(client));
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    get accepted() {
      return accepted;
    },
    /** The next request to arrive (on any connection) is passed on and its answer lost with its connection. */
    dropNext(): void {
      armed = true;
    },
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of [...open]) close(conn);
      await serving;
    },
  };
}
