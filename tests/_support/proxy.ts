/**
 * Starts the real proxy in this process on 127.0.0.1 with a free port, from YAML text as a user would write it.
 * `startProxyProcess` runs the CLI as a subprocess instead (for flags, exit codes and signals).
 */

import { createApp } from "../../src/app.ts";
import type { Clock } from "../../src/core/clock.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { createLogger, type Logger, type LogLevel } from "../../src/logger.ts";
import { buildServices, type Services } from "../../src/services.ts";
import { SimUpstream, type SimUpstreamOptions } from "../../src/sim/upstream.ts";
import { V8_FLAGS } from "../../scripts/compile.ts";
import { tracked } from "./children.ts";

export interface RunningProxy extends AsyncDisposable {
  readonly url: string;
  readonly services: Services;
  /** Log lines written so far (JSON strings). */
  readonly logs: string[];
  close(): Promise<void>;
}

export interface ProxyOptions {
  readonly env?: Record<string, string>;
  readonly logLevel?: LogLevel;
  /** The proxy's clock (default the system clock), e.g. to place a test at a known point of a budget window. */
  readonly clock?: Clock;
}

export async function startProxy(yaml: string, options: ProxyOptions = {}): Promise<RunningProxy> {
  const env = options.env ?? {};
  const config = parseConfig(yaml, "test.yaml", (name) => env[name]);
  const logs: string[] = [];
  const logger: Logger = createLogger({
    level: options.logLevel ?? "debug",
    write: (line) => logs.push(line),
  });
  const services = await buildServices(config, { logger, clock: options.clock });
  const app = createApp(services);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await server.shutdown();
    await services.close();
  };
  return { url, services, logs, close, [Symbol.asyncDispose]: close };
}

/** One endpoint entry of a config, for tests that build configs from parts. */
export function endpointYaml(
  baseUrl: string,
  options: { weight?: number; name?: string; model?: string; extra?: string } = {},
): string {
  return [
    `      - model: ${options.model ?? "upstream-model"}`,
    `        weight: ${options.weight ?? 1}`,
    `        params:`,
    `          base_url: ${baseUrl}`,
    `          api_key: sk-test-${options.name ?? "key"}`,
    ...(options.name ? [`          name: ${options.name}`] : []),
    ...(options.extra ? [options.extra] : []),
  ].join("\n");
}

/**
 * A config with one group `group` made of the given endpoint entries, plus general settings lines. The
 * answer cache is off unless a settings line sets `cache:`, so tests that repeat a request see each repeat
 * upstream.
 */
export function groupYaml(endpoints: string[], settings: string[] = [], group = "gpt-test"): string {
  const cache = settings.some((line) => /^cache\s*:/.test(line)) ? [] : ["  cache: false"];
  return [
    "model_groups:",
    `  - model_group: ${group}`,
    "    models:",
    ...endpoints,
    "general_settings:",
    "  cooldown_time: 30",
    ...cache,
    ...settings.map((line) => `  ${line}`),
  ].join("\n") + "\n";
}

export interface ProxyProcess extends AsyncDisposable {
  readonly url: string;
  readonly child: Deno.ChildProcess;
  /** Everything printed on stdout and stderr so far. */
  output(): string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface ProxyProcessOptions {
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  readonly openFileLimit?: number;
  /** The entry point to run (default the repo's main.ts), e.g. a bundle's main.js. */
  readonly main?: string;
  /** The flags `deno run` gets before it (default `--allow-all` and the V8 flags). */
  readonly runFlags?: readonly string[];
}

/** Runs `deno run main.ts ARGS` and waits for its `Listening on` line. */
export async function startProxyProcess(
  args: string[],
  options: ProxyProcessOptions = {},
): Promise<ProxyProcess> {
  const flags = options.runFlags ?? ["--allow-all", V8_FLAGS];
  const deno = [Deno.execPath(), "run", ...flags, options.main ?? MAIN, ...args];
  // With `openFileLimit`, the proxy runs under `ulimit -n N` (bash then execs deno: the pid stays the proxy's).
  const command = options.openFileLimit === undefined
    ? deno
    : ["bash", "-c", `ulimit -n ${options.openFileLimit} && exec "$@"`, "bash", ...deno];
  const child = tracked(
    "proxy",
    new Deno.Command(command[0], {
      args: command.slice(1),
      env: options.env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn(),
  );
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let url: string | undefined;
  while (!url) {
    const match = text.match(/Listening on (http:\/\/\S+)/);
    if (match) url = match[1];
    else if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      await pumps;
      throw new Error(`proxy did not start:\n${text}`);
    } else {
      const exited = await Promise.race([child.status.then(() => true), delay(20).then(() => false)]);
      if (exited) {
        await pumps;
        throw new Error(`proxy exited before listening:\n${text}`);
      }
    }
  }
  let exitCode: number | undefined;
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (exitCode === undefined) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      exitCode = (await child.status).code;
      await pumps;
    }
    return exitCode;
  };
  return {
    url,
    child,
    output: () => text,
    stop,
    [Symbol.asyncDispose]: async () => void await stop("SIGKILL"),
  };
}

/** Runs the CLI to completion (for flags that exit at once) and returns its exit code and output. */
export async function runCli(
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; output: string }> {
  return await runDeno(["run", "--allow-all", V8_FLAGS, MAIN, ...args], env);
}

/** Runs `deno ARGS` to completion; its exit code and its stdout followed by its stderr. */
export async function runDeno(
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code: result.code, output: decoder.decode(result.stdout) + decoder.decode(result.stderr) };
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One simulated endpoint `a` behind a proxy with the cache on (plus `settings` lines); disposed together. */
export async function cachedProxy(settings: string[] = [], sim: SimUpstreamOptions = {}) {
  const upstream = await SimUpstream.start({ name: "a", quiet: true, ...sim });
  const proxy = await startProxy(
    groupYaml([endpointYaml(upstream.url, { name: "a" })], ["cache: true", ...settings]),
  );
  return {
    sim: upstream,
    proxy,
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await upstream.close();
    },
  };
}
