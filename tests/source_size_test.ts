// The team's size rule (coord RULES, STYLE habit 4): no source file of the proxy (src/, main.ts) over 300 lines.
import assert from "node:assert/strict";
import { test } from "./_support/test.ts";

const MAX_LINES = 300;

async function sourceFiles(dir: URL, into: URL[] = []): Promise<URL[]> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) await sourceFiles(url, into);
    else if (entry.name.endsWith(".ts")) into.push(url);
  }
  return into;
}

test("no source file in src/ or main.ts is over 300 lines", async () => {
  const root = new URL("../", import.meta.url);
  const files = [new URL("main.ts", root), ...await sourceFiles(new URL("src/", root))];
  const over: string[] = [];
  for (const file of files) {
    const lines = (await Deno.readTextFile(file)).split("\n").length - 1;
    if (lines > MAX_LINES) over.push(`${file.pathname.slice(root.pathname.length)}: ${lines} lines`);
  }
  assert.ok(files.length > 100, `found ${files.length} source files`);
  assert.deepEqual(over, [], `over ${MAX_LINES} lines`);
});
