/**
 * CLI only: parse flags -> load config -> build services -> serve -> signals -> shutdown.
 */

import { readFlags } from "./src/cli_flags.ts";
import type { Config } from "./src/config/config.ts";
import { ConfigError, loadConfig } from "./src/config/load.ts";
import { openRelayWarning } from "./src/http/middleware/auth.ts";
import { LiveApp } from "./src/live_app.ts";
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from "./src/logger.ts";
import { tracingWanted } from "./src/telemetry/wanted.ts";
import { serve, type Server } from "./src/serve/server.ts";
import { serveOptions } from "./src/serve/serve_options.ts";
import { settleAfterStart } from "./src/serve/settle.ts";
import { startTimer } from "./src/util/timer.ts";
import { VERSION } from "./src/version.ts";

const USAGE =
  `LLMProxy ${VERSION}: one OpenAI-compatible address in front of many OpenAI and Azure OpenAI endpoints.

Usage: llmproxy [options]

Options:
  --config PATH      config file (default: $LLMPROXY_CONFIG, else ./llmproxy.yaml)
  --host HOST        bind address (overrides general_settings.bind_address)
  --port PORT        bind port, 0 for a free one (overrides general_settings.bind_port)
  --log-level LEVEL  debug | info | warn | error (default: $LOG_LEVEL, else info)
  --reuse-port       share the port with other llmproxy processes (SO_REUSEPORT, Linux; general_settings.reuse_port)
  --check            load and check the config as a start would, then exit: 0 if it loads, 2 if not
  --demo             serve a built-in simulated upstream; needs no config and no API key
  --help             show this text
  --version          print the version
`;

/** Exit codes: 0 clean stop, 2 bad usage or configuration, 1 anything else. */
export async function main(args: string[]): Promise<number> {
  const flags = readFlags(args, {
    config: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    "log-level": { type: "string" },
    "reuse-port": { type: "boolean", default: false },
    demo: { type: "boolean", default: false },
    check: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
    version: { type: "boolean", default: false },
  }, USAGE);
  if (typeof flags === "number") return flags;
  if (flags.version) {
    console.log(VERSION);
    return 0;
  }
  const level = flags["log-level"] ?? Deno.env.get("LOG_LEVEL") ?? "info";
  if (!LOG_LEVELS.includes(level as LogLevel)) {
    console.error(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got '${level}'\n\n${USAGE}`);
    return 2;
  }
  let port: number | undefined;
  if (flags.port !== undefined) {
    port = Number(flags.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      console.error(`--port must be an integer from 0 to 65535, got '${flags.port}'\n\n${USAGE}`);
      return 2;
    }
  }
  const logger = createLogger({ level: level as LogLevel });
  const configPath = flags.config ?? Deno.env.get("LLMPROXY_CONFIG") ?? "llmproxy.yaml";
  if (flags.check) return await check(flags.demo ? undefined : configPath, logger);

  let config: Config;
  let demo: AsyncDisposable | undefined;
  let path: string | undefined;
  try {
    if (flags.demo) {
      // Imported only for --demo: the simulated upstream is code a configured proxy never runs (issue 22: idle RSS).
      const { startDemo } = await import("./src/demo.ts");
      const started = await startDemo();
      config = started.config;
      demo = started;
    } else {
      path = configPath;
      config = await loadConfig(path, (name) => Deno.env.get(name));
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }

  warnIgnored(config, logger);
  const settings = config.settings;
  const hostname = flags.host ?? settings.host;
  const live = await LiveApp.start(config, { logger, tracing: tracingWanted((name) => Deno.env.get(name)) });

  // Listened for before the Listening line and any warning: a supervisor (or a test) that stops the proxy as soon
  // as it has spoken gets a graceful stop, not the signal's default action (exit code 143).
  const stopped = new Promise<string>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => resolve(signal));
    }
  });
  let server: Server;
  try {
    // The proxy's own accept loop: connection cap, idle and header timeouts, survives running out of descriptors.
    server = serve(
      serveOptions(
        {
          hostname,
          port: port ?? settings.port,
          // Several processes on one port (one per core), sharing state through Redis: README "One process per core".
          reusePort: flags["reuse-port"] || settings.reusePort,
          onListen: ({ hostname, port }) => {
            const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
            console.log(`Listening on http://${shown}:${port}`);
            if (flags.demo) printDemoHelp(`http://${shown}:${port}`);
          },
        },
        settings.limits,
        logger,
      ),
      live.fetch,
    );
    if (!server.limited) {
      logger.warn("this Deno cannot serve per connection: client connection limits are off");
    }
  } catch (error) {
    // Port taken, address not on this machine, no permission: one clear line, not a stack trace.
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`Cannot listen on ${hostname}:${port ?? settings.port}: ${reason}`);
    await live.close();
    await demo?.[Symbol.asyncDispose]();
    logger.flush();
    return 1;
  }
  // Start-up garbage collected at the first quiet moments (idle RSS; needs --expose-gc, as the tasks run it).
  using _settling = settleAfterStart(server, { logger });
  const warnIfOpen = () => {
    const warning = openRelayWarning(hostname, live.services.keys.clientKeysRequired);
    if (warning) logger.warn(warning);
  };
  warnIfOpen();

  let stopping = false;
  // SIGHUP: reload the same file; a bad file is logged and the current config stays. (No SIGHUP on Windows.)
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGHUP", () => {
      if (stopping) {
        logger.warn("SIGHUP ignored: shutting down");
        return;
      }
      if (path === undefined) {
        logger.warn("SIGHUP ignored: the demo has no config file to reload");
        return;
      }
      const source = path;
      logger.info("SIGHUP: reloading the config", { source });
      const load = async () => warnIgnored(await loadConfig(source, (name) => Deno.env.get(name)), logger);
      void live.reload(load).then((ok) => ok && warnIfOpen());
    });
  }

  const signal = await stopped;
  stopping = true;
  const { shutdownTimeoutMs } = live.services.config.settings;
  logger.info("shutting down: draining in-flight requests", { signal, timeout_ms: shutdownTimeoutMs });
  const drained = await Promise.race([
    server.shutdown().then(() => true),
    new Promise<false>((resolve) => {
      startTimer(shutdownTimeoutMs, () => resolve(false), { ref: false });
    }),
  ]);
  if (!drained) logger.warn("shutdown timeout reached; exiting with requests still in flight");
  await live.close();
  await demo?.[Symbol.asyncDispose]();
  logger.info("stopped");
  logger.flush();
  return 0;
}

/**
 * `--check`: loads the file as a start (or a SIGHUP reload) would, environment included, and says what it holds;
 * nothing is bound or connected. The systemd units run it before signalling a reload.
 */
async function check(path: string | undefined, logger: Logger): Promise<number> {
  if (path === undefined) {
    console.error(`--check checks a config file; --demo has none\n\n${USAGE}`);
    return 2;
  }
  try {
    const config = warnIgnored(await loadConfig(path, (name) => Deno.env.get(name)), logger);
    logger.flush();
    const endpoints = config.groups.reduce((sum, group) => sum + group.endpoints.length, 0);
    console.log(
      `Config '${path}' is valid: ${config.groups.length} model groups, ${endpoints} endpoints, ` +
        `${config.keys.entries.length} named keys`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    logger.flush();
    console.error(error.message);
    return 2;
  }
}

/** One `warn` line per key the Python LLMProxy reads and this proxy accepts without using. */
function warnIgnored(config: Config, logger: Logger): Config {
  for (const { key, reason } of config.ignored) {
    logger.warn(`config key ${key} is ignored: ${reason}`, { key });
  }
  return config;
}

function printDemoHelp(base: string): void {
  console.log(`
Demo mode: model group "demo" is served by two simulated endpoints (weights 2:1) and a weight-0 fallback.
No API key needed. Try:

  curl -si ${base}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"demo","messages":[{"role":"user","content":"hello"}]}'
  (run it twice: the second answer says x-llmproxy-cache: HIT; x-llmproxy-endpoint shows who answered)

  curl -sN ${base}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"stream please"}]}'

  curl -s ${base}/v1/responses -H 'content-type: application/json' -d '{"model":"demo","input":"hi"}'

  curl -s ${base}/v1/embeddings -H 'content-type: application/json' -d '{"model":"demo","input":"hello"}'

  curl -s ${base}/stats
  curl -s ${base}/health
`);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
