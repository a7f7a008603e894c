/**
 * The Lua scripts the Redis store runs with `defineCommand`: each is one atomic step over keys that share one hash
 * tag, so they run unchanged on Redis Cluster.
 */

import { type CooldownReason, type EndpointHealth, HEALTHY } from "./store.ts";

// Deadlines are kept and compared in Redis's own clock (TIME, allowed in scripts since effects replication): the
// instances send durations and read the time left, so their clocks never meet. An endpoint's health hash lives a
// day past its cooldown's end (or past its last write), so the hashes of endpoints that left the config do not
// stay in Redis for ever. Every health script answers {failures, until, reason, until - now}: until '0' when the
// endpoint never cooled down.
const HEALTH_CLOCK = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keep(key, untilMs)
  redis.call('PEXPIRE', key, math.max(tonumber(untilMs) - now, 0) + 86400000)
end
local function answer(failures, untilMs, reason)
  return {failures, untilMs, reason, tonumber(untilMs) - now}
end
`;

// Each script mirrors the function of the same name in health_transitions.ts. ARGV: allowedFails, cooldown ms.
const RECORD_FAILURE = HEALTH_CLOCK + `
local h = redis.call('HMGET', KEYS[1], 'failures', 'until', 'reason')
local failures = (tonumber(h[1]) or 0) + 1
local untilMs = h[2] or '0'
local reason = h[3] or ''
if failures >= tonumber(ARGV[1]) then
  failures = 0
  local later = now + tonumber(ARGV[2])
  if later > tonumber(untilMs) then
    untilMs = tostring(later)
    reason = 'failures'
  end
  redis.call('HSET', KEYS[1], 'failures', 0, 'until', untilMs, 'reason', reason)
else
  redis.call('HSET', KEYS[1], 'failures', failures)
end
keep(KEYS[1], untilMs)
return answer(failures, untilMs, reason)`;

// ARGV: cooldown ms, reason.
const COOL_DOWN = HEALTH_CLOCK + `
local h = redis.call('HMGET', KEYS[1], 'failures', 'until', 'reason')
local untilMs = h[2] or '0'
local reason = h[3] or ''
local later = now + tonumber(ARGV[1])
if later > tonumber(untilMs) then
  untilMs = tostring(later)
  reason = ARGV[2]
  redis.call('HSET', KEYS[1], 'failures', 0, 'until', untilMs, 'reason', reason)
  keep(KEYS[1], untilMs)
elseif h[1] and h[1] ~= '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  keep(KEYS[1], untilMs)
end
return answer(0, untilMs, reason)`;

const RECORD_SUCCESS = HEALTH_CLOCK + `
local h = redis.call('HMGET', KEYS[1], 'failures', 'until')
if h[1] and h[1] ~= '0' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  keep(KEYS[1], h[2] or '0')
end
return 0`;

// A read: the hash, and the time left of its cooldown by Redis's clock. An empty answer for an absent hash.
const READ_HEALTH = HEALTH_CLOCK + `
local h = redis.call('HMGET', KEYS[1], 'failures', 'until', 'reason')
if not h[1] and not h[2] then return {} end
return answer(h[1] or '0', h[2] or '0', h[3] or '')`;

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
  llmproxyReadHealth: READ_HEALTH,
  llmproxyAddToWindow: ADD_TO_WINDOW,
};

/** A health script's answer; `left`: the ms until `until` by Redis's clock (negative once it passed). */
export type HealthReply = [failures: number | string, until: string, reason: string, left: number];

/** The Lua commands `defineCommand` adds to the client. */
export interface Scripts {
  llmproxyRecordFailure(key: string, allowedFails: number, cooldownMs: number): Promise<HealthReply>;
  llmproxyCoolDown(key: string, forMs: number, reason: CooldownReason): Promise<HealthReply>;
  llmproxyRecordSuccess(key: string): Promise<number>;
  llmproxyReadHealth(key: string): Promise<HealthReply | []>;
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

/**
 * One endpoint's health from a health script's answer, its deadline moved onto this instance's clock (`now`, read
 * when the answer came): the time Redis says is left, from now. `storedUntil` keeps the deadline as Redis holds it.
 */
export function fromScript(reply: HealthReply | [], now: number): EndpointHealth {
  if (reply.length === 0) return HEALTHY;
  const [failures, until, reason, left] = reply;
  const stored = Number(until);
  const kind = reason === "failures" || reason === "rate_limit" ? reason : null;
  if (stored === 0) return { failures: Number(failures), cooldownUntil: 0, reason: kind };
  return { failures: Number(failures), cooldownUntil: now + Number(left), reason: kind, storedUntil: stored };
}
