/**
 * `GET /v1/realtime?model=...`: a WebSocket upgrade. The client's key was checked by the auth middleware like any
 * request's; the upstream socket is opened (with failover) before the client's is accepted, then relayed.
 */

import type { Context } from "hono";
import { ProxyError } from "../../errors.ts";
import type { Services } from "../../services.ts";
import { GROUP_HEADER, groupFor } from "../../surface/groups.ts";
import { openUpstream, pipeSockets } from "../../surface/realtime.ts";
import type { AppEnv } from "./generation.ts";

export function realtimeHandler(services: Services) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    if ((c.req.header("upgrade") ?? "").toLowerCase() !== "websocket") {
      throw new ProxyError(
        426,
        "invalid_request_error",
        "upgrade_required",
        "GET /v1/realtime is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)",
        { headers: { upgrade: "websocket" } },
      );
    }
    const group = groupFor(
      services.config,
      c.req.header(GROUP_HEADER) ?? null,
      c.req.query("model") ?? null,
      c.get("key"),
    );
    c.set("group", group.name);
    const requestId = c.get("requestId");
    const { upstream, pick, attempts } = await openUpstream(
      { ...services, settings: services.config.settings },
      group,
      requestId,
      c.req.raw.signal,
    );
    const offered = (c.req.header("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
    let upgraded: Deno.WebSocketUpgrade;
    try {
      upgraded = Deno.upgradeWebSocket(
        c.req.raw,
        offered.includes("realtime") ? { protocol: "realtime" } : {},
      );
    } catch (error) {
      upstream.socket.close();
      pick.lease.end();
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
    const { socket, response } = upgraded;
    // The endpoint counts the session as in flight until it ends.
    pipeSockets(socket, upstream, services.realtime, () => pick.lease.end());
    response.headers.set("x-llmproxy-endpoint", pick.endpoint.id);
    response.headers.set("x-llmproxy-attempts", String(attempts));
    return response;
  };
}
