/**
 * WebSocket upgrades on the proxy's own server (server.ts), which serves each connection with Deno's per-connection
 * HTTP engine.
 *
 * The trouble (Deno 2.9): that engine's `finished` ends as soon as its connection stops speaking HTTP, which an
 * upgrade does at once, and then closes its server resource with a forced `op_http_close`; since Deno made server
 * shutdown close the WebSockets a server upgraded (ext/http `ActiveWebSockets::begin_shutdown`, denoland/deno#35105),
 * that forced close tears the just-opened socket down: every session died within ~40 ms, about half of them with a
 * 1005 close before the first frame. `Deno.serve` is not affected: there the listener's server owns the sockets and
 * lives on.
 *
 * The way around: the moment the client's socket opens, the engine has handed the TCP stream to the socket and is
 * done with the connection; closing the engine's resource then (a plain resource close cancels only the finished
 * HTTP tasks) leaves its own ending nothing to close, so the socket lives until either side closes it. From then on
 * the proxy's server owns the connection: counted among open connections, exempt from the keep-alive sweep, closed
 * with 1001 at shutdown after the drain. Where the runtime lacks what this needs, sessions end as before.
 */

import { startTimer, type Timer } from "../util/timer.ts";

interface RuntimeCore {
  resources(): Record<string, string>;
  tryClose(rid: number): void;
}

function runtimeCore(): RuntimeCore | undefined {
  const deno = Deno as unknown as Record<symbol, { core?: Partial<RuntimeCore> } | undefined> & {
    internal?: symbol;
  };
  const core = deno.internal ? deno[deno.internal]?.core : undefined;
  return typeof core?.resources === "function" && typeof core.tryClose === "function"
    ? core as RuntimeCore
    : undefined;
}

const core = runtimeCore();

let ridSlot: symbol | undefined;

/** The runtime's resource id of a connection (its `Deno.internal.rid` slot), before it is handed to the engine. */
export function connectionRid(conn: Deno.Conn): number | undefined {
  ridSlot ??= Object.getOwnPropertySymbols(conn).find((symbol) => symbol.description === "Deno.internal.rid");
  const rid = ridSlot ? (conn as unknown as Record<symbol, unknown>)[ridSlot] : undefined;
  return typeof rid === "number" ? rid : undefined;
}

/** The open connections of each proxy server running in this process (their accept loops could interleave). */
const servers = new Set<ReadonlySet<Upgradable>>();

/** Counts a running server, whose connections `upgradeWebSocket` looks in; the function returned uncounts it. */
export function countServer(open: ReadonlySet<Upgradable>): () => void {
  servers.add(open);
  return () => void servers.delete(open);
}

/** The "http" resources of the runtime (the engines of connections and `Deno.serve` servers), by id. */
function engines(): number[] {
  if (!core) return [];
  return Object.entries(core.resources()).filter(([, name]) => name === "http").map(([rid]) => Number(rid));
}

/**
 * The server's record of one connection, as an upgrade needs it: the client's address, the runtime's resource id
 * of the connection, and whether a request is being answered on it.
 */
export interface Upgradable {
  readonly remote: Deno.NetAddr;
  readonly rid: number | undefined;
  /** The connection's engine, when pinned right after it was made (`pinnedEngine`). */
  readonly engine: number | undefined;
  readonly inflight: number;
  readonly socket?: WebSocket;
  /** Takes the WebSocket over (counted until it closes, never swept as idle). */
  adopt(socket: WebSocket): void;
}

/**
 * Which engine resource is a connection's: the first "http" resource made after the connection's own, looked up
 * only at an upgrade (listing the runtime's resources costs ~1 ms per 1,000 open ones). An accept loop hands a
 * connection to the engine before it accepts the next, so with one server a later connection's engine has a higher
 * id; with several servers in one process their accepts can interleave, so the engine is pinned right after it is
 * made instead (the newest "http" resource): call this then.
 */
export function pinnedEngine(): number | undefined {
  return servers.size > 1 && core ? Math.max(-1, ...engines()) : undefined;
}

/**
 * The connection a request being answered came on: nothing is registered per connection (an upgrade is rare, a
 * new connection is not), the servers' open connections are searched by the client's address at an upgrade.
 */
function connectionOf(addr: Deno.Addr): Upgradable | undefined {
  if (!("hostname" in addr)) return undefined;
  for (const open of servers) {
    for (const connection of open) {
      const { remote } = connection;
      if (
        remote.port === addr.port && remote.hostname === addr.hostname && connection.inflight > 0 &&
        !connection.socket
      ) return connection;
    }
  }
  return undefined;
}

/** Keeps `socket` alive past the engine's ending and gives it to the connection's record (see above). */
function keepAlive(connection: Upgradable, socket: WebSocket): void {
  const rid = connection.rid;
  const engine = connection.engine ??
    (rid === undefined ? undefined : Math.min(...engines().filter((e) => e > rid)));
  socket.addEventListener("open", () => {
    if (core && engine !== undefined && Number.isFinite(engine)) core.tryClose(engine);
  });
  connection.adopt(socket);
}

/** Resolves when the socket has closed, or failed before it opened (which brings no close event). */
export function socketEnded(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    let opened = false;
    socket.addEventListener("open", () => opened = true);
    socket.addEventListener("close", () => resolve());
    socket.addEventListener("error", () => opened || resolve());
  });
}

/** Closes a socket with 1001 and waits (at most 2 s) for its close to complete. */
export async function goingAway(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return;
  if (socket.readyState === WebSocket.OPEN) socket.close(1001, "server shutting down");
  let timer: Timer | undefined;
  await Promise.race([
    socketEnded(socket),
    new Promise<void>((resolve) => timer = startTimer(2000, resolve)),
  ]);
  timer?.cancel();
}

/**
 * `Deno.upgradeWebSocket`, telling the proxy's server about the socket when the request came through it (`info` is
 * the handler's second argument; under `Deno.serve`, or without it, this is the plain upgrade).
 */
export function upgradeWebSocket(
  request: Request,
  info: { readonly remoteAddr?: Deno.Addr } | undefined,
  options?: Deno.UpgradeWebSocketOptions,
): Deno.WebSocketUpgrade {
  // Read first: an upgraded request's info no longer answers.
  const connection = info?.remoteAddr ? connectionOf(info.remoteAddr) : undefined;
  const upgraded = Deno.upgradeWebSocket(request, options);
  if (connection) keepAlive(connection, upgraded.socket);
  return upgraded;
}
