/**
 * The Realtime API relayed over WebSocket. The upstream socket is opened first, on an endpoint chosen by the
 * balancer (health, weights, cooldowns) with that endpoint's credentials; a failed handshake counts against the
 * endpoint and the next one is tried, all before the client's socket is accepted. Then frames pass both ways
 * unchanged (upstream frames that arrive before the client's socket opens are held and sent in order), and either
 * side closing closes the other.
 */

import type { Pick } from "../balancer/balancer.ts";
import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import { failoverReason } from "../metrics/metrics.ts";
import type { Balancer } from "../balancer/balancer.ts";
import type { Settings } from "../config/config.ts";
import { ClientGone } from "../errors.ts";
import type { HealthTracker } from "../health/tracker.ts";
import type { ProxyMetrics } from "../metrics/metrics.ts";
import type { Stats } from "../proxy/stats.ts";
import type { UpstreamClient } from "../upstream/client.ts";
import { upstreamUrl } from "../upstream/providers.ts";
import { startTimer } from "../util/timer.ts";

export interface RealtimeDeps {
  readonly settings: Settings;
  readonly balancer: Balancer;
  readonly health: HealthTracker;
  readonly stats: Stats;
  readonly upstream: UpstreamClient;
  readonly metrics?: ProxyMetrics;
}

/** Sessions being relayed by this instance (`/stats`). */
export class RealtimeSessions {
  open = 0;
  opened = 0;
}

/** Longest wait for an upstream's WebSocket handshake. */
export const HANDSHAKE_TIMEOUT_MS = 15_000;

/** The upstream URL of a realtime session: OpenAI's and Azure v1's take `model`, Azure classic's `deployment`. */
export function realtimeUrl(endpoint: EndpointConfig): string {
  const url = new URL(upstreamUrl(endpoint, "realtime"));
  const classic = endpoint.provider === "azure" && endpoint.apiVersion !== undefined;
  url.searchParams.set(classic ? "deployment" : "model", endpoint.model);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** An open upstream socket and the frames it sent before anyone relays them. */
export interface OpenSocket {
  readonly socket: WebSocket;
  readonly held: (string | ArrayBuffer)[];
}

/**
 * Opens a WebSocket to the endpoint; resolves once it is open, rejects with a short reason otherwise. Frames are
 * held from the first one on: the upstream greets at once, before the relay is set up.
 */
async function connect(
  upstream: UpstreamClient,
  endpoint: EndpointConfig,
  session: SessionRequest,
): Promise<OpenSocket> {
  const { requestId, signal, protocols } = session;
  const credentials = await upstream.handshakeHeaders(endpoint, requestId);
  if (!credentials.ok) throw new Error(credentials.message);
  const { headers, bearer } = credentials;
  return await new Promise((resolve, reject) => {
    const socket = new WebSocket(realtimeUrl(endpoint), { headers, protocols: [...protocols] });
    socket.binaryType = "arraybuffer";
    const held: (string | ArrayBuffer)[] = [];
    socket.onmessage = (event) => held.push(event.data);
    const timeoutMs = Math.min(endpoint.timeoutMs, HANDSHAKE_TIMEOUT_MS);
    const timer = startTimer(timeoutMs, () => fail("timeout"));
    const onAbort = () => fail("aborted");
    signal.addEventListener("abort", onAbort);
    function settle() {
      timer.cancel();
      signal.removeEventListener("abort", onAbort);
      socket.onopen = socket.onerror = socket.onclose = null;
    }
    function fail(reason: string, status?: number) {
      settle();
      if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close();
      reject(new HandshakeFailed(reason, status));
    }
    socket.onopen = () => {
      settle();
      resolve({ socket, held });
    };
    socket.onerror = (event) => {
      const status = handshakeStatus(event);
      // A refused Entra ID token is not kept until it expires, as on HTTP (realtime-only endpoints would).
      if (status === 401 && bearer) upstream.tokenRefused(endpoint, bearer);
      fail(status ? `handshake answered HTTP ${status}` : "handshake failed", status);
    };
    socket.onclose = () => fail("handshake failed");
  });
}

/**
 * The HTTP status an upstream answered a handshake with, when it was not 101: Deno's WebSocket says it only in
 * its error's message (`failed to connect to WebSocket: Invalid status code: 401`; tests/runtime_internals_test.ts).
 */
function handshakeStatus(event: Event): number | undefined {
  const message = event instanceof ErrorEvent ? event.message : "";
  const status = /Invalid status code: (\d{3})\b/.exec(message)?.[1];
  return status ? Number(status) : undefined;
}

/** Why a handshake failed, with the upstream's HTTP status when it answered one. */
class HandshakeFailed extends Error {
  constructor(message: string, readonly status: number | undefined) {
    super(message);
  }
}

/** What the client's upgrade asks of the upstream side. */
export interface SessionRequest {
  readonly requestId: string;
  readonly signal: AbortSignal;
  /** The subprotocols the client offered, to offer upstream (never one that carries the client's key). */
  readonly protocols: readonly string[];
}

/**
 * Opens the upstream side of a session on the first endpoint of the plan whose handshake succeeds. Throws the
 * plan's exhausted error (503/504 naming each attempt) when none does.
 */
export async function openUpstream(
  deps: RealtimeDeps,
  group: GroupConfig,
  session: SessionRequest,
): Promise<{ upstream: OpenSocket; pick: Pick; attempts: number }> {
  const { signal } = session;
  const plan = deps.balancer.plan(group, {
    maxAttempts: deps.settings.numRetries + 1,
    maxWaitMs: deps.settings.maxWaitForCapacityMs,
    signal,
  });
  while (true) {
    const pick: Pick | undefined = await plan.next().catch((error: unknown) => {
      if (signal.aborted) throw new ClientGone();
      throw error;
    });
    if (!pick) throw await plan.exhaustedError();
    const { endpoint } = pick;
    deps.stats.attempt(endpoint.id);
    const startedAt = performance.now();
    try {
      const upstream = await connect(deps.upstream, endpoint, session);
      deps.stats.success(endpoint.id, performance.now() - startedAt);
      await deps.health.success(endpoint, pick.health);
      return { upstream, pick, attempts: plan.attempts };
    } catch (error) {
      pick.lease.end();
      if (signal.aborted) throw new ClientGone();
      const reason = error instanceof Error ? error.message : "handshake failed";
      const outcome = reason === "timeout"
        ? { kind: "timeout" as const }
        : { kind: "connection" as const, message: `WebSocket ${reason}` };
      deps.stats.failure(endpoint.id);
      await deps.health.failure(endpoint, `realtime ${reason}`);
      plan.failed(endpoint, outcome);
      // Labelled like an HTTP attempt's failover: by the status the handshake was answered with, when it was
      // (a 1xx or 2xx that is not the upgrade is a malformed answer, as a 200 with a broken body is on HTTP).
      const status = error instanceof HandshakeFailed ? error.status : undefined;
      const labelled = status === undefined
        ? outcome
        : status < 300
        ? { kind: "malformed" as const }
        : { kind: "status" as const, status };
      deps.metrics?.failover(endpoint, failoverReason(labelled));
    }
  }
}

/**
 * Bytes a socket of a session may have waiting to be sent. Deno's WebSocket queues what `send` is given without
 * bound, so a side that stops reading (a client that sends and never reads, an upstream that stops taking frames)
 * would otherwise make the proxy hold whatever the other side sends; past this the session is closed instead.
 */
export const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

/** The close code both sides get when one of them fell more than `MAX_UNSENT_BYTES` behind. */
export const FELL_BEHIND = 4008;

/** A close code one may send: 1000 or an application code; the reserved ones (1005, 1006, ...) become 1000. */
const sendable = (code: number) => (code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000);

/**
 * Relays frames between the client's and the upstream's sockets until either closes. `onUpstreamText` is told each
 * text frame the upstream sends once relaying began (usage is read from them).
 */
export function pipeSockets(
  client: WebSocket,
  opened: OpenSocket,
  sessions: RealtimeSessions,
  onEnd: () => void,
  onUpstreamText?: (frame: string) => void,
): void {
  client.binaryType = "arraybuffer";
  const { socket: upstream, held } = opened;
  let counted = false;
  /** The upstream's close, when it came before the client's socket opened. */
  let closing: { code: number; reason: string } | undefined;
  const close = (socket: WebSocket, code: number, reason: string) => {
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.close(sendable(code), reason.slice(0, 120));
  };
  let over = false;
  const ended = () => {
    if (counted) sessions.open--;
    counted = false;
    if (!over) onEnd();
    over = true;
  };
  /** Sends `data` on `to` unless `to` has too much waiting already: then the session ends (closing the queue). */
  const relay = (to: WebSocket, data: string | ArrayBuffer, who: string) => {
    if (to.bufferedAmount <= MAX_UNSENT_BYTES) return to.send(data);
    const reason = `the ${who} fell more than ${MAX_UNSENT_BYTES / 1024 / 1024} MiB behind`;
    close(upstream, FELL_BEHIND, reason);
    close(client, FELL_BEHIND, reason);
  };
  upstream.onmessage = (event) => {
    if (onUpstreamText && typeof event.data === "string") onUpstreamText(event.data);
    if (client.readyState === WebSocket.OPEN) relay(client, event.data, "client");
    else held.push(event.data);
  };
  upstream.onclose = (event) => {
    if (client.readyState === WebSocket.CONNECTING) closing = { code: event.code, reason: event.reason };
    else close(client, event.code, event.reason);
    ended();
  };
  client.onopen = () => {
    for (const data of held.splice(0)) client.send(data);
    if (closing) return close(client, closing.code, closing.reason);
    sessions.open++;
    sessions.opened++;
    counted = true;
  };
  client.onmessage = (event) => {
    if (upstream.readyState === WebSocket.OPEN) relay(upstream, event.data, "upstream");
  };
  client.onclose = (event) => {
    close(upstream, event.code, event.reason);
    ended();
  };
  client.onerror = upstream.onerror = () => {};
  // The upstream may already have gone while its handshake result was on its way here.
  if (upstream.readyState === WebSocket.CLOSED) closing = { code: 1011, reason: "upstream closed" };
}
