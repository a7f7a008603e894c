/**
 * `DELETE /cache`: drops cached answers only (never cooldowns, budgets or affinity) and says how many went.
 */

import type { Context } from "hono";
import type { Services } from "../../services.ts";
import type { AppEnv } from "./generation.ts";

export function clearCacheHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const deleted = await services.cache.clear();
    services.logger.info("cache cleared", { request_id: c.get("requestId"), deleted });
    return c.json({ deleted });
  };
}
