/**
 * `/ui`: the live dashboard. The page and its assets are open (they hold no data); the figures come from
 * `GET /ui/data`, which needs an admin key like `/stats` (the page asks for it once and keeps it for the browser
 * session). The page runs only the proxy's own scripts and cannot be framed.
 */

import type { Context } from "hono";
import { notFoundRoute } from "../../errors.ts";
import type { Services } from "../../services.ts";
import type { Asset } from "../../ui/assets.ts";
import { dashboardSnapshot } from "../../ui/snapshot.ts";
import type { AppEnv } from "./generation.ts";

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

const serve = (c: Context<AppEnv>, asset: Asset) =>
  c.body(asset.body, 200, {
    "content-type": asset.contentType,
    "cache-control": "no-cache",
    ...SECURITY_HEADERS,
  });

/**
 * The embedded files (uPlot alone is ~50 KB), imported at the first `/ui` request: a proxy nobody opens the
 * dashboard of never holds them (issue 22: idle RSS). A static specifier, so `deno compile` still embeds them.
 */
const assets = () => import("../../ui/assets.ts");

/** The page, told whether its data needs a key (so it asks before its first poll instead of after a 401). */
export function uiPageHandler(services: Services) {
  let pages: Promise<{ asking: Asset; open: Asset }> | undefined;
  const load = async () => {
    const { PAGE } = await assets();
    return {
      asking: { ...PAGE, body: PAGE.body.replace("KEY_NEEDED", "yes") },
      open: { ...PAGE, body: PAGE.body.replace("KEY_NEEDED", "no") },
    };
  };
  // Runtime keys (`/admin/keys`) can appear at any time: asked per request.
  return async (c: Context<AppEnv>) => {
    const { asking, open } = await (pages ??= load());
    const { keys } = services;
    return serve(c, keys.hasAdminKeys || keys.clientKeysRequired ? asking : open);
  };
}

export function uiAssetHandler() {
  return async (c: Context<AppEnv>) => {
    const { ASSETS } = await assets();
    const asset = ASSETS.get(c.req.param("name") ?? "");
    if (!asset) throw notFoundRoute(c.req.method, c.req.path);
    return serve(c, asset);
  };
}

export function uiDataHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const snapshot = await dashboardSnapshot(services);
    return c.json(snapshot, 200, { "cache-control": "no-store", ...SECURITY_HEADERS });
  };
}
