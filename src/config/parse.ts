/**
 * `parseConfig`: the text of a config file -> resolved `Config`, at once (no file read, no await): for the demo,
 * tests and benches. `loadConfig` (`load.ts`) does the same from a file, loading js-yaml only when it is needed.
 */

import { readBlockYaml } from "./block_yaml.ts";
import type { Config } from "./config.ts";
import type { EnvLookup } from "./resolve.ts";
import { configFromTree } from "./tree.ts";
import { parseYaml } from "./yaml.ts";

/** `source` names the file in messages; `env` supplies `os.environ/NAME` references. */
export function parseConfig(text: string, source: string, env: EnvLookup): Config {
  const block = readBlockYaml(text);
  return configFromTree(block ? block.value : parseYaml(text, source), source, env, text);
}
