/**
 * nginx as the bench's reference proxy: what one hop costs when nothing but proxying is in the way. Debian's
 * `nginx` package, installed by the bench when missing (and shown as `n/a` when that fails), runs with a config
 * generated here: one process (`master_process off`, so its CPU and RSS are one PID's), keep-alive connections to
 * the upstream, no access log, and `proxy_buffering off` so streamed chunks pass as they arrive.
 */

import type { ServerProcess } from "./server_process.ts";

/** nginx on a free port of 127.0.0.1 in front of `upstreamUrl`, or why it could not be started. */
export async function startNginx(
  upstreamUrl: string,
  options: { readonly upgrades?: boolean } = {},
): Promise<ServerProcess | string> {
  const binary = await ensureNginx();
  if (!binary) return "nginx is not installed and could not be installed";
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-bench-nginx-" });
  const port = freePort();
  const upstream = new URL(upstreamUrl);
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    config(dir, port, `${upstream.hostname}:${upstream.port}`, options.upgrades ?? false),
  );
  const child = new Deno.Command(binary, {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const errors = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let exitCode: number | undefined;
  const stop = async () => {
    if (exitCode === undefined) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      exitCode = (await child.status).code;
      await errors.cancel().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    return exitCode;
  };
  if (!await listening(port, child.status)) {
    await stop();
    return `nginx did not start listening on 127.0.0.1:${port} (see ${dir}/error.log)`;
  }
  return {
    name: "nginx",
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    output: () => "",
    stop,
    [Symbol.asyncDispose]: async () => void await stop(),
  };
}

/** With `upgrades`, WebSocket upgrades pass too (nginx's documented `Upgrade`/`Connection` settings). */
function config(dir: string, port: number, upstream: string, upgrades: boolean): string {
  const connection = upgrades
    ? `proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;`
    : `proxy_set_header Connection "";`;
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream fake { server ${upstream}; keepalive 256; keepalive_requests 1000000; }${
    upgrades ? '\n  map $http_upgrade $connection_upgrade { default upgrade; "" ""; }' : ""
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      ${connection}
      proxy_buffering off;
      proxy_request_buffering on;
      client_max_body_size 10m;
    }
  }
}
`;
}

/** The nginx binary's path, installing Debian's package once when it is missing; undefined if that fails. */
async function ensureNginx(): Promise<string | undefined> {
  const found = () => ["/usr/sbin/nginx", "/usr/bin/nginx"].find((path) => exists(path));
  if (found()) return found();
  console.error("[bench] nginx not found; installing Debian's nginx package");
  const install = await new Deno.Command("bash", {
    args: [
      "-c",
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light || " +
      "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx",
    ],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  if (!install?.success) return undefined;
  // Debian starts the service it installs; the bench runs its own instance.
  await new Deno.Command("service", { args: ["nginx", "stop"], stdout: "null", stderr: "null" }).output()
    .catch(() => {});
  return found();
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Polls until the port accepts a connection (true) or the process exits or 10 s pass (false). */
async function listening(port: number, exited: Promise<Deno.CommandStatus>): Promise<boolean> {
  let gone = false;
  exited.then(() => gone = true);
  for (let i = 0; i < 200 && !gone; i++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return false;
}
