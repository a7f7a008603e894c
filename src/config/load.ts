/**
 * File -> YAML -> `os.environ/NAME` references -> nulls dropped -> schema -> resolved `Config`, with one readable
 * message per problem: `Cannot load config 'llmproxy.yaml': model_groups[0].models[1].weight must be >= 0, got -1`.
 * Secret values (keys, passwords, Redis URLs) never appear in a message.
 */

import { parseDocument } from "yaml";
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

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { merge: true });
  // Only the first syntax error: the ones after it are usually its echoes.
  const [error] = doc.errors;
  if (error) {
    const where = error.linePos ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}` : "";
    throw new ConfigError(source, [`YAML syntax error${where}: ${error.message.split(" at line ")[0]}`]);
  }
  return doc.toJS();
}

const ENV_REF = /^os\.environ\/(.+)$/;

/** Replaces every string value `os.environ/NAME` in the tree; lists every unset variable at once. */
function substituteEnv(tree: unknown, at: Path, env: EnvLookup, source: string): unknown {
  const missing: string[] = [];
  const walk = (node: unknown, path: Path): unknown => {
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
