/**
 * `deno bundle` gives the bundled CommonJS packages a `require` made by `createRequire` from `node:module`, in a
 * chunk of its own, and every other chunk imports that chunk for its side effect alone (`import"./chunk-X.js";`),
 * even a chunk with no CommonJS in it. Loading `node:module` loads much of Deno's Node compatibility layer: about
 * 3 MiB more RSS at idle (issue 22.4a). Making `require` is that chunk's only side effect, and a chunk that calls
 * `require` imports it by name, so the bare imports of it are dropped: the layer loads with the first chunk that
 * needs it (the Redis store's), not at start.
 */

/** The helper chunk: `createRequire` from `node:module` and nothing else imported. */
const REQUIRE_CHUNK =
  /import\s*\{\s*createRequire as __deno_internal_createRequire\s*\}\s*from\s*"node:module"/;

/**
 * Drops every import of the `require` chunk that binds nothing (`import "./chunk-X.js";`) from the bundle in
 * `outdir`; returns the names of the files changed. A bundle without such a chunk is left as it is.
 */
export async function dropBareRequireImports(outdir: string): Promise<string[]> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(outdir)) {
    if (entry.isFile && entry.name.endsWith(".js")) {
      files.set(entry.name, await Deno.readTextFile(`${outdir}/${entry.name}`));
    }
  }
  const helpers = [...files].filter(([, text]) => isRequireChunk(text)).map(([name]) => name);
  const changed: string[] = [];
  for (const [name, text] of files) {
    let out = text;
    for (const helper of helpers) {
      out = out.replaceAll(new RegExp(`import\\s*"\\./${helper.replaceAll(".", "\\.")}";?`, "g"), "");
    }
    if (out !== text) {
      await Deno.writeTextFile(`${outdir}/${name}`, out);
      changed.push(name);
    }
  }
  return changed;
}

/** The helper chunk imports `node:module` and nothing else. */
function isRequireChunk(text: string): boolean {
  const specifiers = [...text.matchAll(/(?:\bfrom|\bimport)\s*"([\w./:@-]+)"/g)].map((match) => match[1]);
  return REQUIRE_CHUNK.test(text) && specifiers.length === 1 && specifiers[0] === "node:module";
}
