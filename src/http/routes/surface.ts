/**
 * The routes beyond generation, registered under one prefix (`/v1` or none): files, batches, audio, images,
 * moderations and realtime.
 */

import type { Hono } from "hono";
import type { Services } from "../../services.ts";
import { createBatchHandler, createFileHandler, listHandler, objectHandler } from "./files.ts";
import type { AppEnv } from "./generation.ts";
import { formMediaHandler, jsonMediaHandler } from "./media.ts";
import { realtimeHandler } from "./realtime.ts";

export function surfaceRoutes(app: Hono<AppEnv>, services: Services, prefix: string): void {
  app.post(`${prefix}/files`, createFileHandler(services));
  app.get(`${prefix}/files`, listHandler(services, "files"));
  app.get(`${prefix}/files/:id`, objectHandler(services, "files", "GET"));
  app.delete(`${prefix}/files/:id`, objectHandler(services, "files", "DELETE"));
  app.get(`${prefix}/files/:id/content`, objectHandler(services, "files", "GET", "/content"));
  app.post(`${prefix}/batches`, createBatchHandler(services));
  app.get(`${prefix}/batches`, listHandler(services, "batches"));
  app.get(`${prefix}/batches/:id`, objectHandler(services, "batches", "GET"));
  app.post(`${prefix}/batches/:id/cancel`, objectHandler(services, "batches", "POST", "/cancel"));
  app.post(`${prefix}/audio/transcriptions`, formMediaHandler(services, "audio/transcriptions"));
  app.post(`${prefix}/audio/translations`, formMediaHandler(services, "audio/translations"));
  app.post(`${prefix}/audio/speech`, jsonMediaHandler(services, "audio/speech"));
  app.post(`${prefix}/images/generations`, jsonMediaHandler(services, "images/generations"));
  app.post(`${prefix}/images/edits`, formMediaHandler(services, "images/edits"));
  app.post(`${prefix}/moderations`, jsonMediaHandler(services, "moderations"));
  app.get(`${prefix}/realtime`, realtimeHandler(services));
}

/**
 * The routes an app serves, as `METHOD /path` lines (for the 404 of an unknown route): each `/v1` route (also
 * served without `/v1`, which the 404 says) and the routes with no `/v1` twin (the dashboard's).
 */
export function servedRoutes(app: Hono<AppEnv>): string[] {
  const lines = new Set<string>();
  for (const { method, path } of app.routes) {
    if (method !== "ALL") lines.add(`${method} ${path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}")}`);
  }
  const twinned = (line: string) => {
    const [method, path] = line.split(" ");
    return !path.startsWith("/v1/") && lines.has(`${method} /v1${path}`);
  };
  return [...lines].filter((line) => !twinned(line));
}
