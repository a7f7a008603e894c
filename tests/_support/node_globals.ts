/**
 * Runs the proxy (the module given first: main.ts or its bundle's main.js, which export `main`) with Deno's lazily
 * loaded Node globals watched: the first use of each prints `node global used: NAME` and where on stderr, then
 * hands out the real one. Deno 2.9 loads Node's compatibility modules behind these on first use (the timer
 * globals: 1.7 MiB more for an idle proxy, issue 22.4a), so the proxy keeps them off its start and request paths;
 * tests/e2e/bundle_test.ts runs the bundle through this and expects no such line.
 *
 *   deno run FLAGS tests/_support/node_globals.ts ENTRY [proxy arguments...]
 */

/** This script's path, to run as the proxy's entry (`startProxyProcess`'s `main`). */
export const NODE_GLOBALS_WATCH = new URL(import.meta.url).pathname;

const NODE_GLOBALS = [
  "setTimeout",
  "setInterval",
  "clearTimeout",
  "clearInterval",
  "setImmediate",
  "clearImmediate",
  "process",
  "Buffer",
] as const;

if (import.meta.main) {
  for (const name of NODE_GLOBALS) {
    const own = Object.getOwnPropertyDescriptor(globalThis, name);
    if (!own) continue;
    let value: unknown;
    let used = false;
    Object.defineProperty(globalThis, name, {
      configurable: true,
      enumerable: own.enumerable,
      get() {
        if (!used) {
          used = true;
          console.error(`node global used: ${name}\n${new Error().stack}`);
          value = own.get ? own.get.call(globalThis) : own.value;
        }
        return value;
      },
      set(replacement) {
        used = true;
        value = replacement;
      },
    });
  }
  const [entry, ...args] = Deno.args;
  const { main } = await import(new URL(entry, `file://${Deno.cwd()}/`).href);
  Deno.exit(await main(args));
}
