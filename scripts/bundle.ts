/**
 * Bundles the proxy into a few minified ES modules (`deno bundle`): the build the release binary is compiled from
 * and the one to run in production. It idles at less memory than `deno run main.ts` (no CommonJS loader for the
 * npm packages, far fewer modules for V8 to hold); bench/RESULTS.md has the figures.
 *
 *   deno task bundle                                  # dist/bundle/main.js (+ its chunks)
 *   deno run -A scripts/bundle.ts --outdir DIR
 *
 * Code the start path does not need stays in chunks of their own, loaded on first use as in `deno run main.ts`
 * (the demo, the Redis store, tracing, the dashboard's files): `--code-splitting` keeps each dynamic import a
 * separate file, and its specifier static, so `deno compile` embeds every chunk. Node's compatibility layer, which
 * CommonJS packages need, loads with the first chunk that needs it, not at start (`bundle_require.ts`).
 */

import { parseArgs } from "node:util";
import { dropBareRequireImports } from "./bundle_require.ts";

/** Where `deno task bundle` writes; `deno task compile` compiles `dist/bundle/main.js`. */
export const BUNDLE_DIR = "dist/bundle";

/**
 * Minified: ~3 MiB less resident than unminified. It renames classes, so nothing may rely on a class's name
 * (`constructor.name`): the Redis store tells ioredis's error replies by type (`RedisStore.isReply`).
 * `--keep-names` is not an option: with it, deno 2.9 leaves the bundled CommonJS packages without `require`.
 */
export const BUNDLE_FLAGS = ["--code-splitting", "--format", "esm", "--platform", "deno", "--minify"];

/**
 * Bundles `entry` (default the repo's main.ts) into `outdir`; returns the path of the bundle's entry file. Run in
 * the entry's directory, so its deno.json (imports, lock file) applies, as for a checkout of another commit.
 * `signal` kills `deno bundle` (then this rejects).
 */
export async function bundle(
  outdir: string,
  entry = new URL("../main.ts", import.meta.url).pathname,
  signal?: AbortSignal,
): Promise<string> {
  outdir = outdir.startsWith("/") ? outdir : `${Deno.cwd()}/${outdir}`;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", ...BUNDLE_FLAGS, "--outdir", outdir, entry],
    cwd: entry.slice(0, entry.lastIndexOf("/")) || "/",
    stdout: "null",
    stderr: "piped",
    signal,
  }).output();
  if (code !== 0) throw new Error(`deno bundle ${entry} failed:\n${new TextDecoder().decode(stderr)}`);
  await dropBareRequireImports(outdir);
  return `${outdir}/main.js`;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, strict: true, options: { outdir: { type: "string" } } });
  console.log(await bundle(values.outdir ?? BUNDLE_DIR));
}
