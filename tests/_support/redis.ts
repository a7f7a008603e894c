/**
 * Starts a real `redis-server` on 127.0.0.1 for a test: a free port, no persistence, ready once it answers.
 *
 *   await using redis = await startRedis();
 *   const store = await RedisStore.connect({ url: redis.url });
 *
 * `stop()` / `start()` / `restart()` keep the same port (for outage tests). `{ cluster: true }` gives a one-node
 * Redis Cluster that owns every slot. Skip tests where the binary is missing with `ignore: !hasRedis`.
 */

export interface RedisServer {
  readonly port: number;
  /** `redis://[:password@]127.0.0.1:port` */
  readonly url: string;
  /** Stops the server (SIGTERM) and waits for the process to exit. Safe to call twice. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if it runs). */
  start(): Promise<void>;
  /** `stop()` then `start()` on the same port. */
  restart(): Promise<void>;
  /** Stops the server and removes its files. */
  [Symbol.asyncDispose](): Promise<void>;
}

export interface StartRedisOptions {
  /** Sets `requirepass`; the url then carries it. */
  readonly password?: string;
  /** Runs a one-node cluster (`cluster-enabled yes`) that owns all 16384 slots. */
  readonly cluster?: boolean;
}

export const hasRedis: boolean = onPath("redis-server");

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-redis-" });
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    try {
      return await serverOn(port, dir, options);
    } catch (error) {
      if (attempt >= 5) {
        await Deno.remove(dir, { recursive: true });
        throw error;
      }
    }
  }
}

async function serverOn(port: number, dir: string, options: StartRedisOptions): Promise<RedisServer> {
  let child: Deno.ChildProcess | null = await spawn(port, dir, options);
  const stop = async () => {
    if (child === null) return;
    const running = child;
    child = null;
    try {
      running.kill("SIGTERM");
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
    url: password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${password}@127.0.0.1:${port}`,
    stop,
    start,
    restart: start,
    [Symbol.asyncDispose]: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Spawns redis-server on `port` and resolves once it is up (and, for a cluster, serving all slots). */
async function spawn(port: number, dir: string, options: StartRedisOptions): Promise<Deno.ChildProcess> {
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
  const child = new Deno.Command("redis-server", { args, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const auth = options.password === undefined ? "" : `AUTH ${options.password}\r\n`;
  const deadline = Date.now() + 5000;
  let up = false;
  while (Date.now() < deadline && !exited) {
    // Our process, not another one that won the race for the port.
    up ||= (await query(port, `${auth}INFO server\r\n`, /process_id:(\d+)\r\n/))?.[1] === String(child.pid);
    if (up && !options.cluster) return child;
    if (up && options.cluster) {
      // Slots survive a restart in nodes.conf; assigning them again then just fails, which is fine.
      await query(port, `${auth}CLUSTER ADDSLOTSRANGE 0 16383\r\n`, auth ? /\r\n.*\r\n/ : /\r\n/);
      if (await query(port, `${auth}CLUSTER INFO\r\n`, /cluster_state:ok/)) return child;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (!exited) child.kill("SIGKILL");
  const { code } = await status;
  throw new Error(`redis-server on 127.0.0.1:${port} did not come up (exit code ${code})`);
}

/**
 * Sends raw RESP `command` text and reads until `expected` matches; null when the connection fails, closes, or the
 * reply (or the last of several) is an error before `expected` shows up.
 */
async function query(port: number, command: string, expected: RegExp): Promise<RegExpExecArray | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return null;
  }
  try {
    await conn.write(new TextEncoder().encode(command));
    const buffer = new Uint8Array(8192);
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return null;
      text += decoder.decode(buffer.subarray(0, n));
      const match = expected.exec(text);
      if (match) return match;
      if (/(^|\r\n)-[^\r\n]*\r\n$/.test(text)) return null;
    }
  } catch {
    return null;
  } finally {
    conn.close();
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function onPath(command: string): boolean {
  const path = Deno.env.get("PATH") ?? "";
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    try {
      if (Deno.statSync(`${dir}/${command}`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}
