/**
 * Per-key counters, leases and tallies on Redis (see `counters.ts`): the Lua scripts and the calls that build
 * their keys and arguments. Every key of one `charge` carries the scope as hash tag, so the script runs
 * unchanged on Redis Cluster; a lease is a sorted set of holder tokens scored by when each lapses.
 *
 * - `${ns}:{${scope}}:c:${name}` one counter
 * - `${ns}:{${scope}}:l:${name}` one lease set
 * - `${ns}:${key}`               one tally (a hash of integer fields)
 */

import type { Cluster, Redis } from "ioredis";
import type { ChargeReply, Counter, Lease, TallyChunk } from "./counters.ts";
import { subscribeOnRedis } from "./redis_pubsub.ts";

// KEYS: the counters, then the lease set when there is one. ARGV[1]: the number of counters n; per counter
// (amount, limit or '', ttl ms); then, with a lease: token, limit, until, now. Mirrors MemoryCounters.charge.
export const CHARGE = `
local n = tonumber(ARGV[1])
local totals = {}
local refused = -1
for i = 1, n do
  local total = tonumber(redis.call('GET', KEYS[i]) or '0')
  local amount = tonumber(ARGV[3 * i - 1])
  local limit = ARGV[3 * i]
  totals[i] = total
  if refused < 0 and limit ~= '' then
    limit = tonumber(limit)
    if (amount > 0 and total > 0 and total + amount > limit) or (amount == 0 and total >= limit) then
      refused = i - 1
    end
  end
end
local leases = 0
if #KEYS > n then
  local at = 3 * n + 2
  local set = KEYS[n + 1]
  redis.call('ZREMRANGEBYSCORE', set, '-inf', ARGV[at + 3])
  leases = redis.call('ZCARD', set)
  if refused < 0 and leases >= tonumber(ARGV[at + 1]) then refused = n end
  if refused < 0 then
    redis.call('ZADD', set, ARGV[at + 2], ARGV[at])
    local ttl = tonumber(ARGV[at + 2]) - tonumber(ARGV[at + 3])
    if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, math.max(ttl, 1)) end
    leases = leases + 1
  end
end
if refused < 0 then
  for i = 1, n do
    local amount = tonumber(ARGV[3 * i - 1])
    if amount ~= 0 then
      totals[i] = redis.call('INCRBY', KEYS[i], amount)
      redis.call('PEXPIRE', KEYS[i], ARGV[3 * i + 1])
    end
  end
end
return {refused, leases, unpack(totals)}`;

// KEYS: the counters, then the lease set. ARGV[1]: the holder's token; per counter (amount, ttl ms). A request's
// settlement and the release of its place in one step; no limit is checked. Mirrors MemoryCounters.release.
export const SETTLE_AND_RELEASE = `
redis.call('ZREM', KEYS[#KEYS], ARGV[1])
for i = 1, #KEYS - 1 do
  local amount = tonumber(ARGV[2 * i])
  if amount ~= 0 then
    redis.call('INCRBY', KEYS[i], amount)
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i + 1])
  end
end
return 1`;

// KEYS[1]: the tally. ARGV: ttl ms, then field, amount pairs.
export const ADD_TO_TALLY = `
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

// KEYS[1]: the tally. ARGV: ttl ms, the writer's field, then per chunk: seq, number of pairs, field, amount pairs.
// A chunk at or below the writer's highest applied seq has been counted already (a resend): skipped.
export const ADD_TO_TALLY_ONCE = `
local applied = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
local top = applied
local i = 3
while i <= #ARGV do
  local seq = tonumber(ARGV[i])
  local last = i + 1 + 2 * tonumber(ARGV[i + 1])
  if seq > applied then
    for j = i + 2, last, 2 do redis.call('HINCRBY', KEYS[1], ARGV[j], ARGV[j + 1]) end
    if seq > top then top = seq end
  end
  i = last + 1
end
if top > applied then redis.call('HSET', KEYS[1], ARGV[2], top) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

/** The tally field (hidden from `readTally`) holding the highest chunk applied for one writer. */
const APPLIED = "\u0000applied:";

type Client = Redis | Cluster;

/** Most keys one `charge` touches: a key's six limits and its lease set, with room to spare. */
const MAX_CHARGE_KEYS = 12;
type Command = (...args: (string | number)[]) => Promise<number[]>;

export const counterKey = (ns: string, scope: string, name: string) => `${ns}:{${scope}}:c:${name}`;
export const leaseKey = (ns: string, scope: string, name: string) => `${ns}:{${scope}}:l:${name}`;

/** The Redis store's counters, leases, tallies, stream appends and pub/sub (the Store methods of those names). */
export class RedisCounters {
  readonly #client: Client;
  readonly #ns: string;
  readonly #subscriptions = new Set<() => Promise<void>>();

  constructor(client: Client, ns: string) {
    this.#client = client;
    this.#ns = ns;
    client.defineCommand("llmproxyAddToTally", { lua: ADD_TO_TALLY, numberOfKeys: 1 });
    client.defineCommand("llmproxyAddToTallyOnce", { lua: ADD_TO_TALLY_ONCE, numberOfKeys: 1 });
    // Defined up front: an auto-pipeline made before a command is defined has no method for it, and a command
    // defined while one is open for the tick breaks that batch's replies inside ioredis.
    for (let n = 1; n <= MAX_CHARGE_KEYS; n++) {
      client.defineCommand(`llmproxyCharge${n}`, { lua: CHARGE, numberOfKeys: n });
      client.defineCommand(`llmproxyRelease${n}`, { lua: SETTLE_AND_RELEASE, numberOfKeys: n });
    }
  }

  async charge(scope: string, counters: readonly Counter[], lease: Lease | undefined): Promise<ChargeReply> {
    const keys = counters.map((counter) => counterKey(this.#ns, scope, counter.name));
    if (lease) keys.push(leaseKey(this.#ns, scope, lease.name));
    if (keys.length === 0) return { admitted: true, refused: -1, totals: [], leases: 0 };
    const args: (string | number)[] = [counters.length];
    for (const counter of counters) {
      args.push(Math.round(counter.amount), counter.limit ?? "", Math.max(1, Math.ceil(counter.ttlMs)));
    }
    if (lease) args.push(lease.token, lease.limit, Math.ceil(lease.until), Math.floor(lease.now));
    const [refused, leases, ...totals] = await this.#command(keys.length)(...keys, ...args);
    return {
      admitted: refused < 0,
      refused: Number(refused),
      totals: totals.map(Number),
      leases: Number(leases),
    };
  }

  /** With counters, one script (`SETTLE_AND_RELEASE`); without, a `ZREM`. */
  async release(
    scope: string,
    name: string,
    token: string,
    counters: readonly Counter[] = [],
  ): Promise<void> {
    const lease = leaseKey(this.#ns, scope, name);
    if (counters.length === 0) {
      await this.#client.zrem(lease, token);
      return;
    }
    const keys = counters.map((counter) => counterKey(this.#ns, scope, counter.name));
    const args = counters.flatMap((counter) => [
      Math.round(counter.amount),
      Math.max(1, Math.ceil(counter.ttlMs)),
    ]);
    await this.#command(keys.length + 1, "llmproxyRelease")(...keys, lease, token, ...args);
  }

  async addToTally(key: string, amounts: Readonly<Record<string, number>>, ttlMs: number): Promise<void> {
    const pairs = Object.entries(amounts).filter(([, amount]) => Math.round(amount) !== 0)
      .flatMap(([field, amount]) => [field, Math.round(amount)]);
    const client = this.#client as unknown as Record<string, Command>;
    await client.llmproxyAddToTally(`${this.#ns}:${key}`, Math.max(1, Math.ceil(ttlMs)), ...pairs);
  }

  async addToTallyOnce(
    key: string,
    writer: string,
    chunks: readonly TallyChunk[],
    ttlMs: number,
  ): Promise<void> {
    const args: (string | number)[] = [Math.max(1, Math.ceil(ttlMs)), APPLIED + writer];
    for (const { seq, amounts } of chunks) {
      const pairs = Object.entries(amounts).filter(([, amount]) => Math.round(amount) !== 0);
      args.push(seq, pairs.length, ...pairs.flatMap(([field, amount]) => [field, Math.round(amount)]));
    }
    const client = this.#client as unknown as Record<string, Command>;
    await client.llmproxyAddToTallyOnce(`${this.#ns}:${key}`, ...args);
  }

  async readTally(key: string): Promise<Record<string, number>> {
    const fields = await this.#client.hgetall(`${this.#ns}:${key}`);
    return Object.fromEntries(
      Object.entries(fields).filter(([field]) => !field.startsWith(APPLIED))
        .map(([field, value]) => [field, Number(value)]),
    );
  }

  /** `key` is used as written, not namespaced: billing pipelines read the stream by the name they configured. */
  async appendToStream(key: string, fields: Readonly<Record<string, string>>, maxLen: number): Promise<void> {
    await this.#client.xadd(key, "MAXLEN", "~", maxLen, "*", ...Object.entries(fields).flat());
  }

  subscribe(channel: string, onMessage: (message: string | null) => void): () => Promise<void> {
    const stop = subscribeOnRedis(this.#client, `${this.#ns}:${channel}`, onMessage);
    this.#subscriptions.add(stop);
    return async () => {
      if (this.#subscriptions.delete(stop)) await stop();
    };
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#client.publish(`${this.#ns}:${channel}`, message);
  }

  /** Ends the subscriptions' connections. */
  async close(): Promise<void> {
    const stops = [...this.#subscriptions];
    this.#subscriptions.clear();
    await Promise.all(stops.map((stop) => stop()));
  }

  /**
   * The charge (or release) script for `n` keys: a Lua command must be defined with its key count, so that a
   * Cluster auto-pipeline groups it by its keys' slot (the scope's hash tag).
   */
  #command(n: number, script = "llmproxyCharge"): Command {
    if (n < 1 || n > MAX_CHARGE_KEYS) throw new RangeError(`charge: 1 to ${MAX_CHARGE_KEYS} keys, got ${n}`);
    const client = this.#client as unknown as Record<string, Command>;
    return client[`${script}${n}`].bind(client);
  }
}
