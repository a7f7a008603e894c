/**
 * `GET /v1/realtime?model=...`: a WebSocket upgrade. The client's key was checked by the auth middleware like any
 * request's (browsers send it as the `openai-insecure-api-key.KEY` subprotocol); the session is charged to the
 * key's limits, then the upstream socket is opened (with failover) before the client's is accepted, then relayed.
 */

import type { Context } from "hono";
import { ProxyError } from "../../errors.ts";
import { admitSession } from "../../keys/session.ts";
import { offeredProtocols, PROTOCOL_KEY_PREFIX } from "../../keys/key_text.ts";
import type { Services } from "../../services.ts";
import { GROUP_HEADER, groupFor } from "../../surface/groups.ts";
import { openUpstream, pipeSockets } from "../../surface/realtime.ts";
import { upgradeWebSocket } from "../../serve/upgrade.ts";
import { realtimeUsage } from "../../usage/relay_usage.ts";
import { countsUsage } from "../../usage/sink.ts";
import type { AppEnv } from "./generation.ts";

export function realtimeHandler(services: Services) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    requireUpgrade(c);
    const key = c.get("key");
    const group = groupFor(
      services.config,
      c.req.header(GROUP_HEADER) ?? null,
      c.req.query("model") ?? null,
      key,
    );
    c.set("group", group.name);
    // The key's limits pass before any upstream socket is opened: a refusal is the handshake's 429.
    const identity = await admitSession(services, key);
    // The subprotocol carrying the client's key goes no further than here.
    const offered = offeredProtocols(c.req.raw.headers).filter((p) => !p.startsWith(PROTOCOL_KEY_PREFIX));
    let opened;
    try {
      opened = await openUpstream(
        { ...services, settings: services.config.settings },
        group,
        { requestId: c.get("requestId"), signal: c.req.raw.signal, protocols: offered },
      );
    } catch (error) {
      identity?.finish();
      throw error;
    }
    const { upstream, pick, attempts } = opened;
    let upgraded: Deno.WebSocketUpgrade;
    try {
      upgraded = acceptClient(c, offered);
    } catch (error) {
      upstream.socket.close();
      pick.lease.end();
      identity?.finish();
      throw error;
    }
    const { socket, response } = upgraded;
    // The endpoint counts the session as in flight until it ends; the key's place among max_parallel too.
    // Each response of the session is counted with its usage, like a request (when the proxy counts usage).
    const event = { group, route: "realtime", requestId: c.get("requestId") };
    const usage = countsUsage(services)
      ? realtimeUsage(services.usage, event, pick.endpoint.id, identity)
      : undefined;
    pipeSockets(socket, upstream, services.realtime, () => {
      pick.lease.end();
      identity?.finish();
    }, usage);
    response.headers.set("x-llmproxy-endpoint", pick.endpoint.id);
    response.headers.set("x-llmproxy-attempts", String(attempts));
    return response;
  };
}

/** A plain GET (no `Upgrade: websocket`) is told what this route is: 426 with the header to send. */
function requireUpgrade(c: Context<AppEnv>): void {
  if ((c.req.header("upgrade") ?? "").toLowerCase() === "websocket") return;
  throw new ProxyError(
    426,
    "invalid_request_error",
    "upgrade_required",
    "GET /v1/realtime is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)",
    { headers: { upgrade: "websocket" } },
  );
}

/** Accepts the client's socket (offering `realtime` back when it asked for it); a malformed upgrade is a 400. */
function acceptClient(c: Context<AppEnv>, offered: readonly string[]): Deno.WebSocketUpgrade {
  try {
    return upgradeWebSocket(
      c.req.raw,
      c.env as Deno.ServeHandlerInfo | undefined,
      offered.includes("realtime") ? { protocol: "realtime" } : {},
    );
  } catch (error) {
    throw new ProxyError(
      400,
      "invalid_request_error",
      "invalid_upgrade",
      "The WebSocket upgrade request is invalid",
      {
        cause: error,
      },
    );
  }
}
