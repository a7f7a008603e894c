/**
 * One read of an upstream socket, as `Deno.Conn.read` does it but without its wrapper where the runtime's own read
 * is reachable (`Deno[Deno.internal].core`, as `serve/server.ts` reaches `serveHttpOnConnection`): `Conn.read`
 * wraps each read in an async function and a set of pending reads, ~0.6 KiB of garbage per read, and a stream
 * reads its upstream once per event. Where the internal is missing, `Conn.read` is used. Resolves with the bytes
 * read, 0 or null at the end of the stream.
 */
type Core = {
  read?(rid: number, buffer: Uint8Array): Promise<number>;
  internalRidSymbol?: symbol;
  unrefOpPromise?(promise: Promise<unknown>): void;
  refOpPromise?(promise: Promise<unknown>): void;
};
const deno = Deno as unknown as Record<symbol, { core?: Core } | undefined> & { internal?: symbol };
const core = deno.internal ? deno[deno.internal]?.core : undefined;
/** The runtime's own read, and its ref and unref of a pending one, where all are reachable. */
const refs = core?.read && core.unrefOpPromise && core.refOpPromise ? core : undefined;

const ridOf = (conn: Deno.Conn): number | undefined =>
  core?.internalRidSymbol && (conn as unknown as Record<symbol, number | undefined>)[core.internalRidSymbol];

export function socketRead(conn: Deno.Conn, buffer: Uint8Array): Promise<number | null> {
  const rid = ridOf(conn);
  return core?.read && typeof rid === "number" ? core.read(rid, buffer) : conn.read(buffer);
}

/**
 * A read that does not keep the process alive (a parked connection's): the runtime's read with its op unrefed,
 * not `Conn.unref` and `Conn.read` (an async wrapper and a set of pending reads per park, and `Conn.ref` walks
 * that set again when the connection is taken). `wakeRead` makes it count again.
 */
export function idleRead(conn: Deno.Conn, buffer: Uint8Array): Promise<number | null> {
  const rid = ridOf(conn);
  if (refs && typeof rid === "number") {
    const read = refs.read!(rid, buffer);
    refs.unrefOpPromise!(read);
    return read;
  }
  conn.unref(); // before the read, which is then made unrefed
  return conn.read(buffer);
}

/** `read` (from `idleRead` on `conn`) keeps the process alive again: the connection is in use. */
export function wakeRead(conn: Deno.Conn, read: Promise<number | null>): void {
  if (refs && typeof ridOf(conn) === "number") refs.refOpPromise!(read);
  else conn.ref();
}
