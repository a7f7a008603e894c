/**
 * The generation routes a client can call, and their upstream paths (below `/v1`). Shared by every layer (cache
 * keys, budgets, recording, the upstream call), so it lives below all of them.
 */

export type Route = "chat" | "responses" | "embeddings";

export const ROUTE_PATHS: Readonly<Record<Route, string>> = {
  chat: "chat/completions",
  responses: "responses",
  embeddings: "embeddings",
};
