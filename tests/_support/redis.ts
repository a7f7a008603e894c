/**
 * Starts a real `redis-server` on 127.0.0.1 for a test: a free port, no persistence, ready once it answers.
 *
 *   await using redis = await startRedis();
 *   const store = await RedisStore.connect({ url: redis.url });
 *
 * `stop()` / `start()` / `restart()` keep the same port (for outage tests). `{ cluster: true }` gives a one-node
 * Redis Cluster that owns every slot. Skip tests where the binary is missing with `ignore: !hasRedis`.
 */

import { available } from "./test.ts";
import { tracked } from "./children.ts";

export interface RedisServer {
  readonly port: number;
  /** The TLS port when started with `tls` (the plain `port` stays open for the test's own commands). */
  readonly tlsPort?: number;
  /** `redis://[:password@]127.0.0.1:port` */
  readonly url: string;
  /** Stops the server (SIGTERM) and waits for the process to exit. Safe to call twice. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if it runs). */
  start(): Promise<void>;
  /** `stop()` then `start()` on the same port. */
  restart(): Promise<void>;
  /** Sends a signal to the running server: SIGKILL (then waits for the exit), SIGSTOP / SIGCONT (a hung server). */
  signal(signal: "SIGKILL" | "SIGSTOP" | "SIGCONT"): Promise<void>;
  /** Sends one command on a fresh connection; the reply as text, null on an error reply or no reply within 1 s. */
  command(...args: string[]): Promise<string | null>;
  /** Stops the server and removes its files. */
  [Symbol.asyncDispose](): Promise<void>;
}

export interface StartRedisOptions {
  /** Sets `requirepass`; the url then carries it. */
  readonly password?: string;
  /**
   * `true`: a one-node cluster (`cluster-enabled yes`) that owns all 16384 slots. `"node"`: a cluster node with
   * no slots, for `startCluster` to join with others.
   */
  readonly cluster?: boolean | "node";
  /** More `redis-server` arguments, e.g. `["--cluster-node-timeout", "1000"]`. */
  readonly args?: readonly string[];
  /** Also listens with TLS on `tlsPort` (clients must show a certificate the CA signed); PEM file paths. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

/** True where `redis-server` is on the PATH, and always in CI, where a missing server must fail loudly. */
export const hasRedis: boolean = available("redis-server");

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-redis-" });
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    try {
      const tlsPort = options.tls ? freePort() : undefined;
      return await serverOn(port, dir, { ...options, tlsPort });
    } catch (error) {
      if (attempt >= 5) {
        await Deno.remove(dir, { recursive: true });
        throw error;
      }
    }
  }
}

type Spawn = StartRedisOptions & { tlsPort?: number };

async function serverOn(port: number, dir: string, options: Spawn): Promise<RedisServer> {
  let child: Deno.ChildProcess | null = await spawn(port, dir, options);
  const stop = async () => {
    if (child === null) return;
    const running = child;
    child = null;
    try {
      running.kill("SIGTERM");
      // A hung server (SIGSTOP) takes the SIGTERM only once it runs again: a test that failed while it hung
      // would otherwise wait for its exit for ever, past its deadline, and leave it running.
      running.kill("SIGCONT");
    } catch {
      // already exited
    }
    await running.status;
  };
  const start = async () => {
    await stop();
    child = await spawn(port, dir, options);
  };
  const { password } = options;
  return {
    port,
    ...(options.tlsPort !== undefined ? { tlsPort: options.tlsPort } : {}),
    url: password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${password}@127.0.0.1:${port}`,
    stop,
    start,
    restart: start,
    signal: async (signal) => {
      if (child === null) return;
      if (signal !== "SIGKILL") return child.kill(signal);
      const running = child;
      child = null;
      running.kill(signal);
      await running.status;
    },
    command: (...args) => query(port, password, args),
    [Symbol.asyncDispose]: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Spawns redis-server on `port` and resolves once it is up (and, for a cluster, serving all slots). */
async function spawn(port: number, dir: string, options: Spawn): Promise<Deno.ChildProcess> {
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
  ];
  args.push("--loglevel", "warning");
  if (options.password !== undefined) args.push("--requirepass", options.password);
  if (options.cluster) {
    args.push("--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`);
    args.push("--cluster-announce-ip", "127.0.0.1");
  }
  if (options.tls && options.tlsPort !== undefined) {
    args.push("--tls-port", String(options.tlsPort), "--tls-cert-file", options.tls.cert);
    args.push(
      "--tls-key-file",
      options.tls.key,
      "--tls-ca-cert-file",
      options.tls.ca,
      "--tls-auth-clients",
      "yes",
    );
  }
  args.push(...options.args ?? []);
  const child = tracked(
    "redis-server",
    new Deno.Command("redis-server", { args, stdin: "null", stdout: "null", stderr: "null" }).spawn(),
  );
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const ask = (...command: string[]) => query(port, options.password, command);
  const deadline = Date.now() + 5000;
  let up = false;
  while (Date.now() < deadline && !exited) {
    // Our process, not another one that won the race for the port.
    up ||= (await ask("INFO", "server"))?.includes(`process_id:${child.pid}\r\n`) ?? false;
    if (up && options.cluster !== true) return child;
    if (up) {
      // Slots survive a restart in nodes.conf; assigning them again then just fails, which is fine.
      await ask("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
      if ((await ask("CLUSTER", "INFO"))?.includes("cluster_state:ok")) return child;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (!exited) child.kill("SIGKILL");
  const { code } = await status;
  throw new Error(`redis-server on 127.0.0.1:${port} did not come up (exit code ${code})`);
}

/**
 * Sends one command (after AUTH when a password is set) and returns its reply as text: a status, an integer or a
 * bulk string. Null on an error reply, a refused or closed connection, or no complete reply within 1 s.
 */
export async function query(
  port: number,
  password: string | undefined,
  command: string[],
): Promise<string | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return null;
  }
  const timer = setTimeout(() => conn.close(), 1000);
  const commands = password === undefined ? [command] : [["AUTH", password], command];
  try {
    await conn.write(new TextEncoder().encode(commands.map(encode).join("")));
    const buffer = new Uint8Array(16384);
    // latin1 keeps one character per byte, so bulk lengths count characters.
    const decoder = new TextDecoder("latin1");
    let text = "";
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return null;
      text += decoder.decode(buffer.subarray(0, n));
      const replies = parseReplies(text, commands.length);
      if (replies === null) continue;
      const last = replies[replies.length - 1];
      return last instanceof Error ? null : last;
    }
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

function encode(command: string[]): string {
  return `*${command.length}\r\n${command.map((arg) => `$${arg.length}\r\n${arg}\r\n`).join("")}`;
}

/** The first `count` RESP replies in `text` (status, error, integer, bulk), or null while incomplete. */
function parseReplies(text: string, count: number): (string | Error)[] | null {
  const replies: (string | Error)[] = [];
  let pos = 0;
  while (replies.length < count) {
    const eol = text.indexOf("\r\n", pos);
    if (eol < 0) return null;
    const type = text[pos];
    const line = text.slice(pos + 1, eol);
    pos = eol + 2;
    if (type === "-") replies.push(new Error(line));
    else if (type !== "$") replies.push(line);
    else if (Number(line) < 0) replies.push("");
    else {
      const end = pos + Number(line);
      if (text.length < end + 2) return null;
      replies.push(text.slice(pos, end));
      pos = end + 2;
    }
  }
  return replies;
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
