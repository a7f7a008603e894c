/**
 * Deno's per-connection HTTP engine, as the proxy's server (server.ts) reaches it: `serveHttpOnConnection`, a
 * runtime internal (checked by tests/runtime_internals_test.ts), and plain `Deno.serve` where it is missing.
 */

import type { Handler, ServeOptions, Server } from "./server.ts";

export interface ConnectionServer {
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** What the engine does with its abort signal: adds an "abort" listener, its forced close (open_connection.ts). */
interface AbortHook {
  addEventListener(type: "abort", listener: () => void, options?: unknown): void;
}

export type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortHook,
  handler: Handler,
  onError: (error: unknown) => Response,
  onListen: () => void,
) => ConnectionServer;

export function serveOnConnection(): ServeOnConnection | undefined {
  const deno = Deno as unknown as Record<symbol, Record<string, unknown> | undefined> & { internal?: symbol };
  const internal = deno.internal ? deno[deno.internal] : undefined;
  const serveOn = internal?.serveHttpOnConnection;
  return typeof serveOn === "function" ? serveOn as ServeOnConnection : undefined;
}

/** What the engine answers when the handler throws. */
export const engineError = (error: unknown): Response => {
  console.error("request handler failed", error);
  return new Response("Internal Server Error", { status: 500 });
};

/** `Deno.serve` with no connection cap and no timeouts (`limited: false`); its requests counted for settle.ts. */
export function plainServe(options: ServeOptions, handler: Handler): Server {
  // Plain `Deno.serve` counts nothing: its requests are counted here, each until its `completed`.
  const traffic = { requests: 0, inflight: 0 };
  const answered = () => void traffic.inflight--;
  const server = Deno.serve(
    { hostname: options.hostname, port: options.port, reusePort: options.reusePort, onListen: () => {} },
    (request, info) => {
      traffic.requests++;
      traffic.inflight++;
      info.completed.then(answered, answered);
      return handler(request, info);
    },
  );
  options.onListen?.(server.addr);
  return {
    addr: server.addr,
    limited: false,
    connections: 0,
    get requests() {
      return traffic.requests;
    },
    get inflight() {
      return traffic.inflight;
    },
    shutdown: () => server.shutdown(),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
