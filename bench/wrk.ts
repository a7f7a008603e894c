/**
 * HTTP load with wrk (C, epoll, a few threads): it saturates a Deno server on 2 cores while using a fraction of
 * one, which a JS load generator (autocannon, k6's JS VU) cannot, so the numbers are the server's. A Lua script
 * sets the POST body and headers (or builds a unique body per request, for cache misses); `--latency` prints the
 * percentile table that is parsed here.
 */

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly threads: number;
  readonly durationS: number;
  /** Fixed JSON body sent with every request. */
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Make every body unique (the body must contain `%UNIQUE%`, replaced by thread, counter and a run nonce). */
  readonly unique?: boolean;
}

export interface WrkResult {
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p75Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  /** Answers that were not 2xx/3xx. */
  readonly non2xx: number;
  /** Connect, read, write errors and timeouts. */
  readonly socketErrors: number;
  readonly raw: string;
}

/** Finds wrk, installing Debian's package when it is missing (the bench runs as root on these machines). */
export async function ensureWrk(): Promise<void> {
  if (await succeeds("wrk", ["--version"])) return;
  console.error("wrk not found: installing it with apt-get");
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  if (!await succeeds("apt-get", ["install", "-y", "-qq", "wrk"], env)) {
    await succeeds("apt-get", ["update", "-qq"], env);
    if (!await succeeds("apt-get", ["install", "-y", "-qq", "wrk"], env)) {
      throw new Error("wrk is missing and 'apt-get install wrk' failed; install it and run the bench again");
    }
  }
}

async function succeeds(command: string, args: string[], env?: Record<string, string>): Promise<boolean> {
  try {
    const { code } = await new Deno.Command(command, { args, env, stdout: "null", stderr: "null" }).output();
    // wrk --version exits 1 after printing its version.
    return command === "wrk" ? code <= 1 : code === 0;
  } catch {
    return false;
  }
}

/** `text` as a double-quoted Lua string: backslashes, quotes, CR and LF escaped (the bodies here are ASCII). */
function luaQuoted(text: string): string {
  const escapes: Record<string, string> = { "\\": "\\\\", '"': '\\"', "\r": "\\r", "\n": "\\n" };
  return `"${text.replace(/[\\"\r\n]/g, (char) => escapes[char])}"`;
}

function luaScript(options: WrkOptions): string {
  const lines = [`wrk.method = "POST"`];
  for (const [name, value] of Object.entries(options.headers)) {
    lines.push(`wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`);
  }
  if (!options.unique) {
    // Lua turns every line end inside a long bracket into "\n": a body with CRs (a multipart form) is quoted.
    lines.push(
      `wrk.body = ${options.body.includes("\r") ? luaQuoted(options.body) : `[==[${options.body}]==]`}`,
    );
    return lines.join("\n") + "\n";
  }
  const nonce = crypto.randomUUID().slice(0, 8);
  const [before, after] = options.body.split("%UNIQUE%");
  if (after === undefined) throw new Error("a unique wrk body needs a %UNIQUE% placeholder");
  lines.push(
    `local before = [==[${before}]==]`,
    `local after = [==[${after}]==]`,
    `local count = 0`,
    `local threads = 0`,
    `function setup(thread) threads = threads + 1; thread:set("tid", threads) end`,
    `function request()`,
    `  count = count + 1`,
    `  return wrk.format(nil, nil, nil, before .. "${nonce}-" .. tostring(tid) .. "-" .. count .. after)`,
    `end`,
  );
  return lines.join("\n") + "\n";
}

/** Runs wrk once; bounded by its own duration plus a kill after 30 s more. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const script = await Deno.makeTempFile({ prefix: "llmproxy-bench-", suffix: ".lua" });
  try {
    await Deno.writeTextFile(script, luaScript(options));
    const args = [
      "-t",
      String(options.threads),
      "-c",
      String(options.connections),
      "-d",
      `${options.durationS}s`,
      "--timeout",
      "10s",
      "--latency",
      "-s",
      script,
      options.url,
    ];
    const child = new Deno.Command("wrk", { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), (options.durationS + 30) * 1000);
    const { code, stdout, stderr } = await child.output();
    clearTimeout(killer);
    const raw = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    if (code !== 0) throw new Error(`wrk ${args.join(" ")} exited with ${code}:\n${raw}`);
    return parseWrk(raw);
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** Parses wrk's text report (with `--latency`). */
export function parseWrk(raw: string): WrkResult {
  const percentile = (p: number) => {
    const match = raw.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m"));
    if (!match) throw new Error(`wrk output has no ${p}% latency line:\n${raw}`);
    return Number(match[1]) * UNIT_MS[match[2]];
  };
  const requests = raw.match(/^\s*(\d+) requests in/m);
  const rps = raw.match(/^Requests\/sec:\s+([\d.]+)/m);
  if (!requests || !rps) throw new Error(`cannot parse wrk output:\n${raw}`);
  const socket = raw.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    requests: Number(requests[1]),
    rps: Number(rps[1]),
    p50Ms: percentile(50),
    p75Ms: percentile(75),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    non2xx: Number(raw.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    raw,
  };
}

/**
 * One result from several runs of the same measurement: requests and errors add up, throughput is their mean, and
 * each latency percentile is the median of the runs' (one disturbed slice does not move it).
 */
export function combineRuns(runs: readonly WrkResult[]): WrkResult {
  if (runs.length === 0) throw new Error("combineRuns needs at least one run");
  const median = (pick: (run: WrkResult) => number) => {
    const sorted = runs.map(pick).sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  const sum = (pick: (run: WrkResult) => number) => runs.reduce((total, run) => total + pick(run), 0);
  return {
    requests: sum((run) => run.requests),
    rps: sum((run) => run.rps) / runs.length,
    p50Ms: median((run) => run.p50Ms),
    p75Ms: median((run) => run.p75Ms),
    p90Ms: median((run) => run.p90Ms),
    p99Ms: median((run) => run.p99Ms),
    non2xx: sum((run) => run.non2xx),
    socketErrors: sum((run) => run.socketErrors),
    raw: runs.map((run) => run.raw).join("\n"),
  };
}
