/**
 * The Realtime API of the simulated upstream over WebSocket. It greets with `session.created`, answers
 * `response.create` with text deltas and `response.done` (with its usage), echoes any other JSON event as `sim.echo`, sends binary
 * frames back unchanged, and closes with the code and reason of a `sim.close` event (an upstream that hangs up).
 */

import type { SimContext } from "./content.ts";
import { splitPieces } from "./content.ts";

export interface RealtimeSockets {
  /** Sockets open now; closed when the sim closes. */
  readonly open: Set<WebSocket>;
  /** Sessions ever opened. */
  opened: number;
}

/** Upgrades the request and runs one session for `model`. */
export function realtimeSession(
  request: Request,
  model: string,
  ctx: SimContext,
  sockets: RealtimeSockets,
): Response {
  const { socket, response } = Deno.upgradeWebSocket(request);
  const send = (event: Record<string, unknown>) => {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ event_id: ctx.id("event"), ...event }));
    }
  };
  socket.onopen = () => {
    sockets.open.add(socket);
    sockets.opened++;
    send({ type: "session.created", session: { id: ctx.id("sess"), object: "realtime.session", model } });
  };
  socket.onclose = () => sockets.open.delete(socket);
  socket.onerror = () => {};
  socket.onmessage = (message) => {
    if (typeof message.data !== "string") return socket.send(message.data);
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(message.data);
    } catch {
      return send({
        type: "error",
        error: { type: "invalid_request_error", message: "The event is not JSON" },
      });
    }
    if (event.type === "sim.close") {
      return socket.close(typeof event.code === "number" ? event.code : 1000, String(event.reason ?? ""));
    }
    if (event.type !== "response.create") return send({ type: "sim.echo", event });
    const id = ctx.id("resp");
    const text = `[${ctx.name}] realtime ${model}`;
    send({ type: "response.created", response: { id, object: "realtime.response", status: "in_progress" } });
    for (const delta of splitPieces(text, ctx.chunks)) {
      send({ type: "response.output_text.delta", response_id: id, delta });
    }
    const output = Math.ceil(text.length / 4);
    send({
      type: "response.done",
      response: {
        id,
        object: "realtime.response",
        status: "completed",
        output_text: text,
        // As the Realtime API reports it: `input_token_details`, singular.
        usage: {
          total_tokens: 10 + output,
          input_tokens: 10,
          output_tokens: output,
          input_token_details: { cached_tokens: 4, text_tokens: 10, audio_tokens: 0 },
          output_token_details: { text_tokens: output, audio_tokens: 0 },
        },
      },
    });
  };
  return response;
}
