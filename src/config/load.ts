/**
 * File -> YAML -> `os.environ/NAME` references -> nulls dropped -> schema -> resolved `Config`, with one readable
 * message per problem: `Cannot load config 'llmproxy.yaml': model_groups[0].models[1].weight must be >= 0, got -1`.
 * Secret values (keys, passwords, Redis URLs) never appear in a message.
 */

// @ts-types="@types/js-yaml"
import { CORE_SCHEMA, load, Type, YAMLException } from "js-yaml";
import type { Config } from "./config.ts";
import { ConfigError } from "./error.ts";
import { withoutNulls } from "./legacy.ts";
import { describeIssue, formatPath, type Path } from "./messages.ts";
import { type EnvLookup, resolveConfig } from "./resolve.ts";
import { ConfigFileSchema } from "./schema.ts";

export { ConfigError, type EnvLookup };

/** Reads and resolves the config file at `path`; `env` supplies `os.environ/NAME` references. */
export async function loadConfig(path: string, env: EnvLookup): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new ConfigError(path, [notFound(path)]);
    throw new ConfigError(path, [`cannot read the file (${error instanceof Error ? error.message : error})`]);
  }
  return parseConfig(text, path, env);
}

/** What a first run without a config needs to hear: where to start from. */
function notFound(path: string): string {
  const target = /^[\w./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
  return `file not found; to start from the example: cp llmproxy.yaml.example ${target} (then edit model_groups), ` +
    "or run with --demo, which needs no config";
}

/** The pure core of `loadConfig`: `source` names the file in messages. */
export function parseConfig(text: string, source: string, env: EnvLookup): Config {
  const tree = withoutNulls(substituteEnv(parseYaml(text, source), [], env, source));
  if (tree === null || tree === undefined) {
    throw new ConfigError(source, ["the file is empty; it needs at least model_groups"]);
  }
  const result = ConfigFileSchema.safeParse(tree);
  if (!result.success) {
    throw new ConfigError(source, result.error.issues.flatMap((issue) => describeIssue(issue, tree)));
  }
  return resolveConfig(result.data, source, env);
}

/**
 * YAML 1.2's core schema plus merge keys (`<<: *anchor`). js-yaml is plain ESM: `yaml`'s Deno build is CommonJS,
 * which loads Deno's Node compatibility layer at start (+3.5 MiB idle RSS, issue 22.4a).
 */
const SCHEMA = CORE_SCHEMA.extend({
  implicit: [new Type("tag:yaml.org,2002:merge", { kind: "scalar", resolve: (data) => data === "<<" })],
});

function parseYaml(text: string, source: string): unknown {
  try {
    return load(text, { schema: SCHEMA });
  } catch (error) {
    if (!(error instanceof YAMLException)) throw error;
    const { mark } = error;
    const where = mark && mark.line >= 0 ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : "";
    throw new ConfigError(source, [`YAML syntax error${where}: ${error.reason}`]);
  }
}

const ENV_REF = /^os\.environ\/(.+)$/;
/**
 * Values a config may hold once its aliases are expanded: an anchor is one shared object, and this walk copies it
 * at every alias, so nested aliases (a "billion laughs" file) would grow without bound.
 */
export const MAX_CONFIG_VALUES = 1_000_000;

/** Replaces every string value `os.environ/NAME` in the tree; lists every unset variable at once. */
function substituteEnv(tree: unknown, at: Path, env: EnvLookup, source: string): unknown {
  const missing: string[] = [];
  let budget = MAX_CONFIG_VALUES;
  const walk = (node: unknown, path: Path): unknown => {
    if (--budget < 0) {
      throw new ConfigError(source, [
        `the file expands to more than ${MAX_CONFIG_VALUES} values (nested aliases?)`,
      ]);
    }
    if (typeof node === "string") {
      const name = ENV_REF.exec(node)?.[1];
      if (name === undefined) return node;
      const value = env(name);
      if (value === undefined) missing.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return value;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
    }
    return node;
  };
  const result = walk(tree, at);
  if (missing.length > 0) throw new ConfigError(source, missing);
  return result;
}
