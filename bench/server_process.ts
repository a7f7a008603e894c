/**
 * A server under test as its own OS process (`deno run ...`), so its CPU and RSS are its own: started, awaited
 * until it prints `Listening on http://HOST:PORT` (every server of the bench prints that line, like the proxy), and
 * stopped with SIGTERM (then SIGKILL after a bound).
 */

export interface ServerProcess extends AsyncDisposable {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** What the process printed so far (stdout and stderr), for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. Safe to call twice. */
  stop(graceMs?: number): Promise<number>;
}

export interface StartOptions {
  /** Arguments after `deno`, e.g. `["run", "-A", "main.ts", "--port", "0"]`. */
  readonly args: string[];
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Give up waiting for the `Listening on` line after this long. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** Also append everything the process prints (stdout and stderr, whole) to this file, e.g. a GC trace. */
  readonly outputFile?: string;
}

const HERE = new URL(".", import.meta.url).pathname;

/**
 * The bench's fake upstream (bench/upstream_server.ts) as its own process, run from the repo's root; `flags` are
 * its own, e.g. `["--chunks", "50", "--chunk-delay-ms", "5"]`.
 */
export function startUpstream(flags: string[] = []): Promise<ServerProcess> {
  return startServer("fake upstream", {
    args: ["run", "-A", `${HERE}upstream_server.ts`, ...flags],
    cwd: `${HERE}..`,
  });
}

const LISTENING = /Listening on (http:\/\/\S+)/;
/** Output kept per process, so a chatty child cannot grow the bench's memory. */
const MAX_OUTPUT = 64 * 1024;

export async function startServer(name: string, options: StartOptions): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: options.args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let onText: (() => void) | undefined;
  const decoder = new TextDecoder();
  const file = options.outputFile
    ? await Deno.open(options.outputFile, { append: true, create: true })
    : undefined;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      for (let done = 0; file && done < chunk.length;) done += file.writeSync(chunk.subarray(done));
      text += decoder.decode(chunk, { stream: true });
      if (text.length > MAX_OUTPUT) text = text.slice(-MAX_OUTPUT);
      onText?.();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {}).finally(() =>
    file?.close()
  );

  let exitCode: number | undefined;
  const stop = async (graceMs = 5000) => {
    if (exitCode !== undefined) return exitCode;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, graceMs);
    exitCode = (await child.status).code;
    clearTimeout(timer);
    await pumps;
    return exitCode;
  };

  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const url = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    const check = () => {
      const match = text.match(LISTENING);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    onText = check;
    child.status.then(() => {
      clearTimeout(timer);
      resolve(text.match(LISTENING)?.[1]);
    });
    check();
  });
  onText = undefined;
  if (!url) {
    await stop(1000);
    throw new Error(`${name} did not print 'Listening on' within ${timeoutMs} ms; its output:\n${text}`);
  }
  return {
    name,
    url,
    pid: child.pid,
    output: () => text,
    stop,
    [Symbol.asyncDispose]: async () => void await stop(),
  };
}

/**
 * Loads `entry` twice (`--version`) before it is measured: a build's first run transpiles and fills Deno's caches
 * and reads ~15-30 MiB higher than every later run, which is not what a deployed proxy sees.
 */
export async function warmEntry(entry: string, cwd: string): Promise<void> {
  for (let run = 0; run < 2; run++) {
    const { code } = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", entry, "--version"], cwd })
      .output();
    if (code !== 0) throw new Error(`${entry} --version exited ${code}`);
  }
}
