/**
 * One read of an upstream socket, as `Deno.Conn.read` does it but without its wrapper where the runtime's own read
 * is reachable (`Deno[Deno.internal].core`, as `serve/server.ts` reaches `serveHttpOnConnection`): `Conn.read`
 * wraps each read in an async function and a set of pending reads, ~0.6 KiB of garbage per read, and a stream
 * reads its upstream once per event. Where the internal is missing, `Conn.read` is used. Resolves with the bytes
 * read, 0 or null at the end of the stream. Reads that must not keep the process alive (a parked connection's)
 * go through `Conn.read`, which unrefs them.
 */
type Core = { read?(rid: number, buffer: Uint8Array): Promise<number>; internalRidSymbol?: symbol };
const deno = Deno as unknown as Record<symbol, { core?: Core } | undefined> & { internal?: symbol };
const core = deno.internal ? deno[deno.internal]?.core : undefined;

export function socketRead(conn: Deno.Conn, buffer: Uint8Array): Promise<number | null> {
  const rid = core?.internalRidSymbol &&
    (conn as unknown as Record<symbol, number | undefined>)[core.internalRidSymbol];
  return core?.read && typeof rid === "number" ? core.read(rid, buffer) : conn.read(buffer);
}
