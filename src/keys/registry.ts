/**
 * Every client key the proxy knows, by the SHA-256 of the key: the `keys:` entries of the config, the runtime keys
 * created through the admin routes, and the flat `api_keys` / `admin_keys` (keys with no limits). A request's key
 * is found with one hash and one map lookup; a key is never held in clear. (A lookup by digest leaks no useful
 * timing: whoever guesses controls no bit of the digest.)
 *
 * Runtime keys live in the store as one document (`RuntimeDoc`, see runtime_doc.ts); every instance reloads it
 * when it hears of a version it does not have. On the memory store they last until the process ends.
 */

import type { Config } from "../config/config.ts";
import type { HeaderReader } from "../core/header_reader.ts";
import { echoed, ProxyError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Store } from "../store/store.ts";
import { presentedKeys, randomText } from "./key_text.ts";
import { ANONYMOUS, ANONYMOUS_KEY } from "./schema.ts";
import { buildPolicy, digestOf, type KeyPolicy } from "./policy.ts";
import type { PolicyFields } from "./schema.ts";
import { type RuntimeDoc, RuntimeDocStore, type StoredKey } from "./runtime_doc.ts";
import { isoTime } from "../util/iso_time.ts";

/** Matched key strings remembered at most (then forgotten all at once). */
const MAX_KNOWN = 4096;

export interface RegistryOptions {
  readonly store: Store;
  readonly logger: Logger;
}

export const keyConflict = (message: string) =>
  new ProxyError(409, "invalid_request_error", "key_conflict", message);
export const keyNotFound = (name: string) =>
  new ProxyError(404, "invalid_request_error", "key_not_found", `No key named '${echoed(name)}'`);

export class KeyRegistry {
  readonly #doc: RuntimeDocStore;
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
  #ids = new Set<string>();
  readonly #logger: Logger;
  #warnedAnonymous = false;
  #clients = 0;

  constructor(config: Config, options: RegistryOptions) {
    this.#logger = options.logger;
    this.#doc = new RuntimeDocStore(options.store, options.logger, (doc) => this.#apply(doc));
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

  /** What `clientKeysRequired` and `hasAdminKeys` will say once `config` is configured (runtime keys stay). */
  under(config: Config): { clientKeysRequired: boolean; hasAdminKeys: boolean } {
    const { apiKeys, adminKeys } = config.settings;
    return {
      clientKeysRequired: config.keys.entries.length > 0 || apiKeys.some((key) => key !== "") ||
        this.#runtime.length > 0,
      hasAdminKeys: adminKeys.some((key) => key !== ""),
    };
  }

  /** Whether `id` is a key known now, by the name usage counts it as (`KeyPolicy.id`). */
  counts(id: string): boolean {
    return this.#ids.has(id);
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
      return [...keys, { name, digest, created: isoTime(Date.now()), policy: fields }];
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
  refresh(): Promise<void> {
    return this.#doc.refresh();
  }

  /** Starts listening for other instances' changes (shared stores only). */
  start(): void {
    this.#doc.watch();
  }

  close(): Promise<void> {
    return this.#doc.close();
  }

  #refuseConfigKey(name: string, what: string): void {
    if (this.#fixed.some((policy) => policy.source === "config" && policy.name === name)) {
      throw keyConflict(`The key '${name}' is defined in the config file; it is ${what} there (then SIGHUP)`);
    }
  }

  /** Applies `edit` to the stored runtime keys, then here at once. */
  #change(edit: (keys: readonly StoredKey[]) => StoredKey[]): Promise<void> {
    return this.#doc.change(edit);
  }

  #apply(doc: RuntimeDoc): void {
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
    this.#ids = new Set([...byDigest.values()].map((policy) => policy.id));
    if (!this.#warnedAnonymous && this.#ids.has(ANONYMOUS_KEY)) {
      this.#warnedAnonymous = true;
      this.#logger.warn(
        `a key is named '${ANONYMOUS}', the name usage gives callers without a key: it works, and its usage is ` +
          `counted as '${ANONYMOUS_KEY}'. Rename it: in the config file's keys: (then SIGHUP), or create a ` +
          `runtime key under another name and revoke this one (DELETE /admin/keys/${ANONYMOUS})`,
      );
    }
    this.#clients = [...byDigest.values()].filter((policy) => policy.source !== "admin_keys").length;
  }
}
