/**
 * Opening a socket to an upstream for the HTTP/1.1 client (`http1.ts`): TCP (without Nagle's delay) or TLS (its
 * handshake done), given up after a timeout (an upstream that never answers a SYN) or when the call's signal aborts.
 */

import { deadlines } from "../util/deadlines.ts";
import type { AbortLike } from "../core/abort_like.ts";
import { type Target, UpstreamProtocolError } from "./http1_wire.ts";
import { closeQuietly, untilAborted } from "./until_aborted.ts";

export async function openSocket(
  target: Target,
  signal: AbortLike,
  timeoutMs: number,
  /** Extra root certificates (PEM) for a TLS upstream. */
  caCerts?: string[],
): Promise<Deno.Conn> {
  const options = { hostname: target.hostname, port: target.port };
  const connecting = new AbortController();
  const onAbort = () => connecting.abort(signal.reason);
  signal.addEventListener("abort", onAbort);
  const timer = deadlines.after(timeoutMs, () => {
    connecting.abort(new UpstreamProtocolError(`connect timeout: no connection within ${timeoutMs / 1000}s`));
  });
  try {
    if (target.tls) {
      // The handshake now, not lazily at the first write: its failure is a connection never made (nothing of the
      // request went), and it is within the connect timeout.
      const pending = Deno.connectTls({ ...options, caCerts, alpnProtocols: ["http/1.1"] }).then(shaken);
      return await untilAborted(pending, connecting.signal, closeQuietly);
    }
    const tcp = await Deno.connect({ ...options, signal: connecting.signal });
    tcp.setNoDelay(true);
    return tcp;
  } catch (error) {
    const thrown = connecting.signal.aborted ? connecting.signal.reason : error;
    if (thrown instanceof Error) unconnected.add(thrown);
    throw thrown;
  } finally {
    timer.cancel();
    signal.removeEventListener("abort", onAbort);
  }
}

async function shaken(tls: Deno.TlsConn): Promise<Deno.TlsConn> {
  try {
    await tls.handshake();
    return tls;
  } catch (error) {
    closeQuietly(tls);
    throw error;
  }
}

/** Errors of connections that were never made. */
const unconnected = new WeakSet<Error>();

/**
 * Whether a call failed before it had a connection, so the upstream got nothing of it: a connection this module
 * could not open, or one Deno's fetch could not (its error's cause names the `Connect` step).
 */
export function neverConnected(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (unconnected.has(error)) return true;
  const cause = error.cause;
  return cause instanceof Error && /client error \(Connect\)/.test(cause.message);
}

/** `error`, of a resend whose first sending may have reached the server: no longer "never connected". Throws. */
export function maybeSent(error: unknown): never {
  if (error instanceof Error) unconnected.delete(error);
  throw error;
}
