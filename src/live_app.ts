/**
 * The request handler the server calls, swapped atomically on a config reload (SIGHUP). A reload builds new
 * services and a new app for the new config around the SAME store, stats and metrics, so the health of endpoints
 * whose id did not change survives; requests already in flight finish on the app they started on. A config that
 * does not load, or whose services fail to build, is logged and the current one stays live as it was: nothing
 * of it changes until the new build is whole (`Services.activate`).
 */

import { createApp } from "./app.ts";
import type { Config } from "./config/config.ts";
import { ConfigError } from "./config/load.ts";
import { buildServices, type ServiceOptions, type Services } from "./services.ts";

type Handler = (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response>;
type Build = (config: Config, options: ServiceOptions) => Promise<Services>;

export class LiveApp {
  #services: Services;
  #handler: Handler;
  readonly #options: ServiceOptions;
  readonly #build: Build;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(services: Services, options: ServiceOptions, build: Build) {
    this.#services = services;
    this.#handler = handlerOf(services);
    this.#options = options;
    this.#build = build;
  }

  /** `build` makes the services of each config (`buildServices`; a test may wrap it). */
  static async start(
    config: Config,
    options: ServiceOptions,
    build: Build = buildServices,
  ): Promise<LiveApp> {
    return new LiveApp(await build(config, options), options, build);
  }

  /** The services now serving new requests. */
  get services(): Services {
    return this.#services;
  }

  /** Pass this to `Deno.serve`: each request goes to the app live when it arrives. */
  readonly fetch: Handler = (request, info) => this.#handler(request, info);

  /**
   * Loads a new config with `load` and makes it live; true on success. A `ConfigError` (or any other failure) is
   * logged, counted in `llmproxy_config_reloads_total{result="failure"}`, and the current config stays. Reloads
   * run one at a time, in order.
   */
  reload(load: () => Promise<Config>): Promise<boolean> {
    const next = this.#queue.then(() => this.#reload(load));
    this.#queue = next.catch(() => {});
    return next;
  }

  async #reload(load: () => Promise<Config>): Promise<boolean> {
    const { logger } = this.#options;
    const previous = this.#services;
    let config: Config;
    try {
      config = await load();
    } catch (error) {
      previous.metrics.configReload("failure");
      logger.error("config reload failed; the current config stays live", {
        error: error instanceof ConfigError ? error.message : `unexpected error: ${describe(error)}`,
      });
      return false;
    }
    // Built whole before anything of the live config changes: a build that fails leaves it as it was.
    let services: Services | undefined;
    let handler: Handler;
    try {
      services = await this.#build(config, { ...this.#options, previous });
      handler = handlerOf(services);
    } catch (error) {
      // What the failed build opened for itself goes (`buildServices` closes it when the build itself throws).
      await services?.discard();
      previous.metrics.configReload("failure");
      logger.error("config reload failed; the current config stays live", { error: describe(error) });
      return false;
    }
    for (const warning of restartOnlyChanges(previous.config, config)) logger.warn(warning);
    // One synchronous step: what the two configs share takes the new config's settings, and it serves. Nothing
    // of `previous` is kept here (requests in flight hold what they use): its cache writes still to come (a
    // stream that began before the reload writes when it ends) are tracked by the new cache's.
    services.activate();
    this.#services = services;
    this.#handler = handler;
    services.metrics.configReload("success");
    logger.info("config reloaded", {
      source: config.source,
      model_groups: config.groups.length,
      endpoints: config.groups.reduce((total, group) => total + group.endpoints.length, 0),
    });
    // Then what the old config alone owned stops: its probes, and its upstream client when the kind changed.
    await previous.prober?.close();
    if (previous.upstream !== services.upstream) previous.upstream.close();
    return true;
  }

  /**
   * Waits for a reload under way, then closes the services, which wait for the cache writes of every generation (a
   * stream that began before a reload may still be writing) and close the store they all share.
   */
  async close(): Promise<void> {
    await this.#queue;
    await this.#services.close();
  }
}

function handlerOf(services: Services): Handler {
  const app = createApp(services);
  return (request, info) => app.fetch(request, info);
}

const describe = (error: unknown) => error instanceof Error ? error.message : String(error);

/** Settings a reload cannot apply (the socket and the store stay as they are), as warnings. */
export function restartOnlyChanges(before: Config, after: Config): string[] {
  const warnings: string[] = [];
  const a = before.settings;
  const b = after.settings;
  if (a.host !== b.host || a.port !== b.port) {
    warnings.push("bind_address/bind_port changed: a restart is needed to listen on the new address");
  }
  if (JSON.stringify(a.redis ?? null) !== JSON.stringify(b.redis ?? null) || a.namespace !== b.namespace) {
    warnings.push(
      "Redis settings or cache_params.namespace changed: a restart is needed to use the new store",
    );
  }
  // The bounds of what this process keeps in memory are set when its store is made.
  const bounds = [
    ["cache_params.max_entries", a.cacheMaxEntries, b.cacheMaxEntries],
    ["cache_params.max_bytes", a.cacheMaxBytes, b.cacheMaxBytes],
    ["response_affinity_max_entries", a.responseAffinityMaxEntries, b.responseAffinityMaxEntries],
    ["object_records_max_entries", a.objectRecordsMaxEntries, b.objectRecordsMaxEntries],
    ["list_cursors_max_entries", a.listCursorsMaxEntries, b.listCursorsMaxEntries],
  ] as const;
  const changed = bounds.filter(([, was, now]) => was !== now).map(([name]) => name);
  if (changed.length > 0) {
    warnings.push(`${changed.join(", ")} changed: a restart is needed to apply the new in-memory bounds`);
  }
  return warnings;
}
