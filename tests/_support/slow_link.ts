/**
 * A TCP relay on 127.0.0.1 that delivers what the client sends `delayMs` late (each chunk at its arrival time plus
 * the delay, in order; answers come back at once). In front of redis-server it makes every round trip cost
 * about `delayMs`, so a test can count the round trips a request makes from how long it takes.
 */

export interface SlowLink extends AsyncDisposable {
  readonly port: number;
}

export function slowLink(targetPort: number, delayMs: number): SlowLink {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const relay = async (client: Deno.Conn) => {
    let target: Deno.Conn;
    try {
      target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      client.close();
      return;
    }
    open.add(client).add(target);
    const close = () => {
      for (const conn of [client, target]) {
        open.delete(conn);
        try {
          conn.close();
        } catch { /* already closed */ }
      }
    };
    // Client to target, late: each chunk is written when its own delay has passed, in arrival order.
    let queue = Promise.resolve();
    (async () => {
      try {
        for await (const chunk of client.readable) {
          const due = performance.now() + delayMs;
          queue = queue.then(async () => {
            await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
            await target.write(chunk);
          }).catch(close);
        }
      } catch { /* closed */ }
      queue.finally(close);
    })();
    target.readable.pipeTo(client.writable).catch(close);
  };
  (async () => {
    try {
      for await (const conn of listener) relay(conn);
    } catch { /* listener closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    },
  };
}
