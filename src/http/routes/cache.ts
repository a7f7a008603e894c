/**
 * `DELETE /cache`: drops cached answers only (never cooldowns, budgets or affinity) and says how many went; with
 * `?format=python`, in the Python LLMProxy's shape (`{timestamp, deleted_entries, status: "success"}`).
 */

import type { Context } from "hono";
import type { Services } from "../../services.ts";
import type { AppEnv } from "./generation.ts";
import { pythonTime } from "./python_info.ts";

export function clearCacheHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const deleted = await services.cache.clear();
    services.logger.info("cache cleared", { request_id: c.get("requestId"), deleted });
    if (c.req.query("format") === "python") {
      return c.json({ timestamp: pythonTime(Date.now()), deleted_entries: deleted, status: "success" });
    }
    return c.json({ deleted });
  };
}
