import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseFlags } from "../src/cli_flags.ts";
import { test } from "./_support/test.ts";

const OPTIONS = {
  config: { type: "string" },
  port: { type: "string" },
  timeout: { type: "string", default: "60" },
  demo: { type: "boolean", default: false },
  help: { type: "boolean" },
} as const;

/** What Node's `util.parseArgs` (strict, no positionals) gives: the values, or the error message. */
function node(args: string[]): unknown {
  try {
    return {
      values: { ...parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values },
    };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

function own(args: string[]): unknown {
  try {
    return { values: { ...parseFlags(args, OPTIONS) } };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

const TOKENS = [
  "--config",
  "a.yaml",
  "--port=8080",
  "--port",
  "-5",
  "-",
  "--",
  "--demo",
  "--demo=1",
  "--help",
  "--nope",
  "-x",
  "-abc",
  "--timeout=",
  "--Config",
  "--=x",
];

test("flags: the same values and messages as Node's util.parseArgs, for every sequence of up to 3 tokens", () => {
  let sequences = 0;
  const check = (args: string[]) => {
    assert.deepEqual(own(args), node(args), JSON.stringify(args));
    sequences++;
  };
  check([]);
  for (const a of TOKENS) {
    check([a]);
    for (const b of TOKENS) {
      check([a, b]);
      for (const c of TOKENS) check([a, b, c]);
    }
  }
  assert.equal(sequences, 1 + 16 + 16 ** 2 + 16 ** 3);
});

test("flags: messages users see", () => {
  assert.deepEqual(own(["--port"]), { error: "Option '--port <value>' argument missing" });
  assert.deepEqual(own(["--nope"]), { error: "Unknown option '--nope'" });
  assert.deepEqual(own(["x"]), {
    error: "Unexpected argument 'x'. This command does not take positional arguments",
  });
  assert.deepEqual(own(["--port", "7", "--demo"]), { values: { port: "7", demo: true, timeout: "60" } });
});
