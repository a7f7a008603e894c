/**
 * File -> YAML -> `os.environ/NAME` references -> nulls dropped -> schema -> resolved `Config`, with one readable
 * message per problem: `Cannot load config 'llmproxy.yaml': model_groups[0].models[1].weight must be >= 0, got -1
 * (line 12)`.
 * Secret values (keys, passwords, Redis URLs) never appear in a message.
 */

import { readBlockYaml } from "./block_yaml.ts";
import type { Config } from "./config.ts";
import { ConfigError } from "./error.ts";
import type { EnvLookup } from "./resolve.ts";
import { configFromTree } from "./tree.ts";

export { ConfigError, type EnvLookup };
export { MAX_CONFIG_VALUES } from "./tree.ts";

/**
 * Reads and resolves the config file at `path`; `env` supplies `os.environ/NAME` references. Plain block YAML is
 * read here; any other file by js-yaml, imported then (`yaml.ts`; idle RSS, issue 22.4a).
 */
export async function loadConfig(path: string, env: EnvLookup): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new ConfigError(path, [notFound(path)]);
    throw new ConfigError(path, [`cannot read the file (${error instanceof Error ? error.message : error})`]);
  }
  const block = readBlockYaml(text);
  if (block) return configFromTree(block.value, path, env, text);
  const { parseYaml } = await import("./yaml.ts");
  return configFromTree(parseYaml(text, path), path, env, text);
}

/** What a first run without a config needs to hear: where to start from. */
function notFound(path: string): string {
  const target = /^[\w./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
  return `file not found; to start from the example: cp llmproxy.yaml.example ${target} (then edit model_groups), ` +
    "or run with --demo, which needs no config";
}
