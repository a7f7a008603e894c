/**
 * Every client key the proxy knows, by the SHA-256 of the key: the `keys:` entries of the config, the runtime keys
 * created through the admin routes, and the flat `api_keys` / `admin_keys` (keys with no limits). A request's key
 * is found with one hash and one map lookup; a key is never held in clear. (A lookup by digest leaks no useful
 * timing: whoever guesses controls no bit of the digest.)
 *
 * Runtime keys live in the store as one document (`keys:runtime`) with a version (`keys:version`); changes take a
 * short lock and announce the new version on the store's `keys:changed` channel (Redis pub/sub, on a connection
 * of its own), and every instance reloads the document when it hears of a version it does not have, or after its
 * subscription (re)connects. So a key created, changed or revoked through any instance applies on every instance
 * within a Redis round trip or two. On the memory store they last until the process ends.
 */

import type { Config } from "../config/config.ts";
import type { HeaderReader } from "../core/header_reader.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";
import { presentedKeys, randomText } from "./key_text.ts";
import { buildPolicy, digestOf, type KeyPolicy } from "./policy.ts";
import type { PolicyFields } from "./schema.ts";
import { sleep } from "../util/timer.ts";

const DOC = "keys:runtime";
const VERSION = "keys:version";
const LOCK = "keys:lock";
const LOCK_TTL_MS = 5_000;
const LOCK_TRIES = 100;
const LOCK_WAIT_MS = 20;
const CHANNEL = "keys:changed";
/** Matched key strings remembered at most (then forgotten all at once). */
const MAX_KNOWN = 4096;

/** One runtime key as stored: its digest and policy, never the key. */
interface StoredKey {
  readonly name: string;
  readonly digest: string;
  readonly created: string;
  readonly policy: PolicyFields;
}

interface RuntimeDoc {
  readonly version: string;
  readonly keys: readonly StoredKey[];
}

export interface RegistryOptions {
  readonly store: Store;
  readonly logger: Logger;
}

export const keyConflict = (message: string) =>
  new ProxyError(409, "invalid_request_error", "key_conflict", message);
export const keyNotFound = (name: string) =>
  new ProxyError(404, "invalid_request_error", "key_not_found", `No key named '${name.slice(0, 64)}'`);

export class KeyRegistry {
  readonly #store: Store;
  readonly #logger: Logger;
  #fixed: KeyPolicy[] = [];
  #runtime: KeyPolicy[] = [];
  #byDigest = new Map<string, KeyPolicy>();
  readonly #seen = new WeakMap<object, { index: Map<string, KeyPolicy>; policy: KeyPolicy | undefined }>();
  /**
   * Presented keys that matched, with their digest, so a key in use is hashed once, not on every request (a
   * SHA-256 costs about as much as 3% of a request). Only keys that matched; bounded; in this process only.
   */
  readonly #known = new Map<string, string>();
  #admins = new Set<string>();
  #clients = 0;
  #version: string | null = null;
  #unsubscribe: (() => Promise<void>) | undefined;
  #reading: Promise<void> | null = null;
  #again = false;

  constructor(config: Config, options: RegistryOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.configure(config);
  }

  /** Takes the keys of a (re)loaded config; runtime keys stay. */
  configure(config: Config): void {
    const { apiKeys, adminKeys } = config.settings;
    const legacy = (
      keys: readonly string[],
      source: "api_keys" | "admin_keys",
      name: (i: number) => string,
    ) =>
      [...new Set(keys.filter((key) => key !== ""))].map((key, i) =>
        buildPolicy(name(i), digestOf(key), source, {})
      );
    const admins = legacy(
      adminKeys,
      "admin_keys",
      (i) => adminKeys.length === 1 ? "admin" : `admin_keys[${i}]`,
    );
    this.#admins = new Set(admins.map((policy) => policy.digest));
    this.#fixed = [
      ...config.keys.entries,
      ...legacy(apiKeys, "api_keys", (i) => `api_keys[${i}]`),
      ...admins,
    ];
    this.#index();
  }

  /** The policy of a presented key (a digest from `digestOf`); undefined when unknown. */
  lookup(digest: string): KeyPolicy | undefined {
    return this.#byDigest.get(digest);
  }

  /**
   * The policy of the first key the request presents that is known; undefined when none is. Remembered per
   * request (its headers), so the auth middleware and the admission stage hash the key once between them.
   */
  identify(headers: HeaderReader): KeyPolicy | undefined {
    if (this.#byDigest.size === 0) return undefined;
    const seen = this.#seen.get(headers);
    if (seen !== undefined && seen.index === this.#byDigest) return seen.policy;
    let policy: KeyPolicy | undefined;
    for (const key of presentedKeys(headers)) {
      const known = this.#known.get(key);
      const digest = known ?? digestOf(key);
      policy = this.#byDigest.get(digest);
      if (!policy) continue;
      if (known === undefined) {
        if (this.#known.size >= MAX_KNOWN) this.#known.clear();
        this.#known.set(key, digest);
      }
      break;
    }
    this.#seen.set(headers, { index: this.#byDigest, policy });
    return policy;
  }

  isAdmin(policy: KeyPolicy): boolean {
    return this.#admins.has(policy.digest);
  }

  /** Whether client keys exist (config, runtime or `api_keys`): then every model route needs one. */
  get clientKeysRequired(): boolean {
    return this.#clients > 0;
  }

  get hasAdminKeys(): boolean {
    return this.#admins.size > 0;
  }

  /** Every named key (config, then runtime), for `GET /admin/keys`; `api_keys` and `admin_keys` are not named. */
  list(): KeyPolicy[] {
    return [...this.#fixed.filter((policy) => policy.source === "config"), ...this.#runtime];
  }

  byName(name: string): KeyPolicy | undefined {
    return this.list().find((policy) => policy.name === name);
  }

  /** Creates a runtime key; answers the key itself, which is shown this once and kept only as a digest. */
  async create(name: string, fields: PolicyFields): Promise<{ name: string; key: string }> {
    const key = `sk-llmproxy-${randomText(32)}`;
    const digest = digestOf(key);
    await this.#change((keys) => {
      if (this.#fixed.some((policy) => policy.name === name) || keys.some((stored) => stored.name === name)) {
        throw keyConflict(`A key named '${name}' already exists`);
      }
      return [...keys, { name, digest, created: new Date().toISOString(), policy: fields }];
    });
    return { name, key };
  }

  /** Changes a runtime key's policy: `null` removes a field. Keys of the config file change with the file. */
  async update(name: string, patch: Readonly<Record<string, unknown>>): Promise<KeyPolicy> {
    this.#refuseConfigKey(name, "changed");
    await this.#change((keys) => {
      const index = keys.findIndex((stored) => stored.name === name);
      if (index < 0) throw keyNotFound(name);
      const merged: Record<string, unknown> = { ...keys[index].policy };
      for (const [field, value] of Object.entries(patch)) {
        if (value === null) delete merged[field];
        else if (value !== undefined) merged[field] = value;
      }
      return keys.with(index, { ...keys[index], policy: merged as PolicyFields });
    });
    return this.byName(name)!;
  }

  /** Revokes a runtime key: it stops working on every instance. */
  async revoke(name: string): Promise<void> {
    this.#refuseConfigKey(name, "revoked");
    await this.#change((keys) => {
      if (!keys.some((stored) => stored.name === name)) throw keyNotFound(name);
      return keys.filter((stored) => stored.name !== name);
    });
  }

  /** Reads the runtime keys when another instance changed them; a store that cannot answer changes nothing. */
  async refresh(): Promise<void> {
    if (this.#store.status() !== "ok") return;
    const version = await this.#store.get(VERSION);
    if (version === null || version === this.#version) return;
    this.#apply(parseDoc(await this.#store.get(DOC)));
  }

  /** Starts listening for other instances' changes (shared stores only). */
  start(): void {
    if (this.#unsubscribe || !this.#store.subscribe) return;
    this.#unsubscribe = this.#store.subscribe(CHANNEL, (version) => {
      if (version === null || version !== this.#version) this.#reread();
    });
  }

  async close(): Promise<void> {
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await unsubscribe?.();
  }

  /** Reads the runtime keys again; one read at a time, and one more when asked during a read. */
  #reread(): void {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = this.refresh().catch((error) =>
      this.#logger.warn("could not read runtime keys", { error: error instanceof Error ? error.message : "" })
    ).finally(() => {
      this.#reading = null;
      if (this.#again) {
        this.#again = false;
        this.#reread();
      }
    });
  }

  #refuseConfigKey(name: string, what: string): void {
    if (this.#fixed.some((policy) => policy.source === "config" && policy.name === name)) {
      throw keyConflict(`The key '${name}' is defined in the config file; it is ${what} there (then SIGHUP)`);
    }
  }

  /** Applies `edit` to the stored runtime keys under the lock, then here at once. */
  async #change(edit: (keys: readonly StoredKey[]) => StoredKey[]): Promise<void> {
    const token = crypto.randomUUID();
    let locked = false;
    for (let i = 0; i < LOCK_TRIES && !locked; i++) {
      locked = await this.#store.setIfAbsent(LOCK, token, LOCK_TTL_MS);
      if (!locked) await sleep(LOCK_WAIT_MS);
    }
    if (!locked) {
      throw new ProxyError(
        503,
        "service_unavailable",
        "keys_busy",
        "Runtime keys are being changed; try again",
      );
    }
    try {
      const doc = parseDoc(await this.#store.get(DOC));
      const next: RuntimeDoc = { version: crypto.randomUUID(), keys: edit(doc.keys) };
      await this.#store.set(DOC, JSON.stringify(next));
      await this.#store.set(VERSION, next.version);
      this.#apply(next);
      await this.#store.publish?.(CHANNEL, next.version).catch((error) =>
        this.#logger.warn("could not announce a key change; other instances see it on their next reconnect", {
          error: error instanceof Error ? error.message : "",
        })
      );
    } finally {
      await this.#store.deleteIfEquals(LOCK, token).catch(() => false);
    }
  }

  #apply(doc: RuntimeDoc): void {
    this.#version = doc.version;
    const fixedNames = new Set(this.#fixed.map((policy) => policy.name));
    this.#runtime = doc.keys.filter((stored) => !fixedNames.has(stored.name)).map((stored) =>
      buildPolicy(stored.name, stored.digest, "runtime", stored.policy, stored.created)
    );
    this.#index();
  }

  #index(): void {
    const byDigest = new Map<string, KeyPolicy>();
    // Config keys win over runtime keys with the same digest; admin keys over both.
    for (const policy of [...this.#runtime, ...this.#fixed]) byDigest.set(policy.digest, policy);
    this.#byDigest = byDigest;
    this.#clients = [...byDigest.values()].filter((policy) => policy.source !== "admin_keys").length;
  }
}

function parseDoc(text: string | null): RuntimeDoc {
  if (text === null) return { version: "", keys: [] };
  try {
    const doc = JSON.parse(text) as RuntimeDoc;
    return Array.isArray(doc.keys) ? doc : { version: "", keys: [] };
  } catch {
    return { version: "", keys: [] };
  }
}
