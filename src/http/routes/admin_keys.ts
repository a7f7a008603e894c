/**
 * Key management and usage, for admin keys only (the auth middleware checks): `POST /admin/keys` creates a key
 * (the key is in this answer only; the proxy keeps its SHA-256), `GET /admin/keys` lists keys (never a key),
 * `PATCH /admin/keys/{name}` changes a runtime key's policy, `DELETE /admin/keys/{name}` revokes it, and
 * `GET /admin/usage?from=YYYY-MM-DD&to=YYYY-MM-DD[&key=NAME]` reads usage per day.
 */

import type { Context } from "hono";
import type { AnySchema, FinalIssue, Output } from "../../check/mod.ts";
import { nonDecimal } from "../../config/schema_parts.ts";
import { echoed, invalidRequest } from "../../errors.ts";
import { policyView } from "../../keys/policy.ts";
import { CreateKeySchema, PatchKeySchema } from "../../keys/schema.ts";
import type { Services } from "../../services.ts";
import { parseJsonBody, readBodyText } from "../body.ts";
import type { AppEnv } from "./generation.ts";
import { isoDay } from "../../util/iso_time.ts";

/** The longest range `GET /admin/usage` reads at once. */
const MAX_USAGE_DAYS = 366;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function invalidPolicy(issues: FinalIssue[], body: Record<string, unknown>): Error {
  const problems = issues.map((issue) => {
    const path = issue.path.join(".");
    if (issue.code === "unrecognized_keys") {
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${
        issue.keys.map((key) => `'${key}'`).join(", ")
      }`;
    }
    const value = issue.path.length === 1 ? body[String(issue.path[0])] : undefined;
    const message = issue.code === "invalid_type" && nonDecimal(value)
      ? `must be a number in decimal digits, got ${JSON.stringify(echoed(String(value)))}`
      : issue.message;
    return `${path === "" ? "body" : `'${path}'`} ${message}`;
  });
  return invalidRequest(`Invalid key policy: ${problems.join("; ")}`, String(issues[0]?.path[0] ?? ""));
}

async function readPolicy<T extends AnySchema>(c: Context<AppEnv>, services: Services, schema: T) {
  const { maxBodyBytes, maxBodyItems } = services.config.settings;
  const body = await parseJsonBody(
    await readBodyText(c.req.raw, maxBodyBytes, undefined, undefined, c.get("bodyHold")),
    maxBodyItems,
  );
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw invalidPolicy(parsed.error.issues, body);
  return parsed.data as Output<T>;
}

export function createKeyHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const { name, ...fields } = await readPolicy(c, services, CreateKeySchema);
    const created = await services.keys.create(name, fields);
    services.logger.info("key created", { request_id: c.get("requestId"), key_name: name });
    return c.json({ ...policyView(services.keys.byName(name)!), key: created.key }, 201);
  };
}

export function listKeysHandler(services: Services) {
  return (c: Context<AppEnv>) => c.json({ data: services.keys.list().map(policyView) });
}

export function patchKeyHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const name = c.req.param("name") ?? "";
    const patch = await readPolicy(c, services, PatchKeySchema);
    const policy = await services.keys.update(name, patch);
    services.logger.info("key changed", { request_id: c.get("requestId"), key_name: name });
    return c.json(policyView(policy));
  };
}

export function deleteKeyHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const name = c.req.param("name") ?? "";
    await services.keys.revoke(name);
    services.logger.info("key revoked", { request_id: c.get("requestId"), key_name: name });
    return c.json({ name, deleted: true });
  };
}

export function usageHandler(services: Services) {
  return async (c: Context<AppEnv>) => {
    const today = isoDay(services.clock.now());
    const from = c.req.query("from") ?? today;
    const to = c.req.query("to") ?? from;
    for (const [param, value] of [["from", from], ["to", to]]) {
      if (!DATE.test(value) || !Number.isFinite(Date.parse(`${value}T00:00:00Z`))) {
        throw invalidRequest(`'${param}' must be a date YYYY-MM-DD, got '${echoed(value)}'`, param);
      }
    }
    const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
    if (days < 1) throw invalidRequest(`'from' (${from}) must not be after 'to' (${to})`, "from");
    if (days > MAX_USAGE_DAYS) {
      throw invalidRequest(`The range is ${days} days; at most ${MAX_USAGE_DAYS} are read at once`, "to");
    }
    const key = c.req.query("key");
    return c.json({ data: await services.usage.query(from, to, key === "" ? undefined : key) });
  };
}
