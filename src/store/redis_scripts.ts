/**
 * The Lua scripts the Redis store runs with `defineCommand`: each is one atomic step over keys that share one hash
 * tag, so they run unchanged on Redis Cluster.
 */

import { type CooldownReason, type EndpointHealth, HEALTHY } from "./store.ts";

// An endpoint's health hash lives a day past its cooldown's end (or past its last write), so the hashes of
// endpoints that left the config do not stay in Redis for ever. TIME is allowed in scripts (effects replication).
const KEEP_HEALTH = `
local function keep(key, untilMs)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('PEXPIRE', key, math.max(tonumber(untilMs) - now, 0) + 86400000)
end
`;

// Each script mirrors the function of the same name in health_transitions.ts.
const RECORD_FAILURE = KEEP_HEALTH + `
local h = redis.call('HMGET', KEYS[1], 'failures', 'until', 'reason')
local failures = (tonumber(h[1]) or 0) + 1
local untilMs = h[2] or '0'
local reason = h[3] or ''
if failures >= tonumber(ARGV[1]) then
  failures = 0
  if tonumber(ARGV[2]) > tonumber(untilMs) then
    untilMs = ARGV[2]
    reason = 'failures'
  end
  redis.call('HSET', KEYS[1], 'failures', 0, 'until', untilMs, 'reason', reason)
else
  redis.call('HSET', KEYS[1], 'failures', failures)
end
keep(KEYS[1], untilMs)
return {failures, untilMs, reason}`;

const COOL_DOWN = KEEP_HEALTH + `
local h = redis.call('HMGET', KEYS[1], 'failures', 'until', 'reason')
local untilMs = h[2] or '0'
local reason = h[3] or ''
if tonumber(ARGV[1]) > tonumber(untilMs) then
  untilMs = ARGV[1]
  reason = ARGV[2]
  redis.call('HSET', KEYS[1], 'failures', 0, 'until', untilMs, 'reason', reason)
  keep(KEYS[1], untilMs)
elseif h[1] and h[1] ~= '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  keep(KEYS[1], untilMs)
end
return {0, untilMs, reason}`;

const RECORD_SUCCESS = KEEP_HEALTH + `
local h = redis.call('HMGET', KEYS[1], 'failures', 'until')
if h[1] and h[1] ~= '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  keep(KEYS[1], h[2] or '0')
end
return 0`;

const ADD_TO_WINDOW = `
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total`;

// Mirrors MemoryStore.addToWindows. ARGV: ttl ms, then per key its amount and its limit ('' for none). Defined
// once per key count (`numberOfKeys`), so a Cluster client routes it by its first key.
export const ADD_TO_WINDOWS = `
local totals = {}
local fits = 1
for i = 1, #KEYS do
  local total = tonumber(redis.call('GET', KEYS[i]) or '0')
  local amount = tonumber(ARGV[2 * i])
  local limit = ARGV[2 * i + 1]
  totals[i] = total
  if limit ~= '' and amount > 0 and total > 0 and total + amount > tonumber(limit) then fits = 0 end
end
if fits == 1 then
  for i = 1, #KEYS do
    local amount = tonumber(ARGV[2 * i])
    if amount ~= 0 then
      totals[i] = redis.call('INCRBY', KEYS[i], amount)
      redis.call('PEXPIRE', KEYS[i], ARGV[1])
    end
  end
end
table.insert(totals, 1, fits)
return totals`;

// KEYS: the value, the lock (same hash tag). ARGV: token, ttl ms. Returns {1, value} or {0, locked 0|1}: a Lua
// table ends at its first nil, so the absent value is not put in it.
export const READ_OR_LOCK = `
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, 1} end
return {0, 0}`;

// KEYS: the value, the lock (same hash tag). ARGV: value, ttl ms (0: none), token. Returns 1 when the lock went.
export const SET_AND_UNLOCK = `
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else redis.call('SET', KEYS[1], ARGV[1]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then return redis.call('DEL', KEYS[2]) end
return 0`;

export const ONE_KEY_SCRIPTS = {
  // Deletes the key only while it still holds the caller's value (a lock's owner token).
  llmproxyDeleteIfEquals: `
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`,
  // Makes the key live `ARGV[2]` ms more only while it still holds the caller's value (a lock its owner keeps).
  llmproxyExtendIfEquals: `
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0`,
  llmproxyRecordFailure: RECORD_FAILURE,
  llmproxyCoolDown: COOL_DOWN,
  llmproxyRecordSuccess: RECORD_SUCCESS,
  llmproxyAddToWindow: ADD_TO_WINDOW,
};

export type HealthReply = [failures: number | string, until: string, reason: string];

/** The Lua commands `defineCommand` adds to the client. */
export interface Scripts {
  llmproxyRecordFailure(key: string, allowedFails: number, until: number): Promise<HealthReply>;
  llmproxyCoolDown(key: string, until: number, reason: CooldownReason): Promise<HealthReply>;
  llmproxyRecordSuccess(key: string): Promise<number>;
  llmproxyDeleteIfEquals(key: string, value: string): Promise<number>;
  llmproxyExtendIfEquals(key: string, value: string, ttlMs: number): Promise<number>;
  llmproxyAddToWindow(key: string, amount: number, windowMs: number): Promise<number>;
  llmproxyReadOrLock(
    key: string,
    lock: string,
    token: string,
    ttlMs: number,
  ): Promise<[0 | 1, string | 0 | 1]>;
  llmproxySetAndUnlock(
    key: string,
    lock: string,
    value: string,
    ttlMs: number,
    token: string,
  ): Promise<number>;
}

/** One endpoint's health from its hash (HMGET failures, until, reason). */
export function toHealth(reply: (string | null)[]): EndpointHealth {
  const [failures, until, reason] = reply;
  if (failures === null && until === null) return HEALTHY;
  return {
    failures: failures === null ? 0 : Number(failures),
    cooldownUntil: until === null ? 0 : Number(until),
    reason: reason === "failures" || reason === "rate_limit" ? reason : null,
  };
}

/** One endpoint's health from a health script's reply. */
export function fromScript([failures, until, reason]: HealthReply): EndpointHealth {
  return {
    failures: Number(failures),
    cooldownUntil: Number(until),
    reason: reason === "failures" || reason === "rate_limit" ? reason : null,
  };
}
