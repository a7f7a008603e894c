/**
 * The parsed file -> `os.environ/NAME` references -> nulls dropped -> schema -> resolved `Config`, with one readable
 * message per problem. Shared by `loadConfig` (`load.ts`) and `parseConfig` (`parse.ts`), whichever read the YAML.
 */

import type { Config } from "./config.ts";
import { ConfigError } from "./error.ts";
import { withoutNulls } from "./legacy.ts";
import { lineOf } from "./line_of.ts";
import { describeIssue, formatPath, type Path } from "./messages.ts";
import { type EnvLookup, resolveConfig } from "./resolve.ts";
import { ConfigFileSchema } from "./schema.ts";

/**
 * The config in `parsed` (the YAML document's value); `source` names the file in messages, and `text`, the file as
 * written, gives them the line of each path: `general_settings.cache must be true or false, got "maybe" (line 8)`.
 */
export function configFromTree(parsed: unknown, source: string, env: EnvLookup, text?: string): Config {
  const at = (path: Path, message: string) => {
    const line = text === undefined || path.length === 0 ? undefined : lineOf(text, path);
    return line === undefined ? message : `${message} (line ${line})`;
  };
  const tree = withoutNulls(substituteEnv(parsed, [], env, source, at));
  if (tree === null || tree === undefined) {
    throw new ConfigError(source, ["the file is empty; it needs at least model_groups"]);
  }
  const result = ConfigFileSchema.safeParse(tree);
  if (!result.success) {
    throw new ConfigError(
      source,
      result.error.issues.flatMap((issue) =>
        describeIssue(issue, tree).map((message, i) =>
          at(issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[i]] : issue.path, message)
        )
      ),
    );
  }
  try {
    return resolveConfig(result.data, source, env);
  } catch (error) {
    // What is found across entries (a duplicate name, a missing key) carries its path: give it its line too.
    if (!(error instanceof ConfigError) || text === undefined) throw error;
    throw new ConfigError(
      source,
      error.problems.map((problem, i) => {
        const path = error.paths[i];
        return path === undefined ? problem : at(path, problem);
      }),
    );
  }
}

const ENV_REF = /^os\.environ\/(.+)$/;
/**
 * Values a config may hold once its aliases are expanded: an anchor is one shared object, and this walk copies it
 * at every alias, so nested aliases (a "billion laughs" file) would grow without bound.
 */
export const MAX_CONFIG_VALUES = 1_000_000;

/** Replaces every string value `os.environ/NAME` in the tree; lists every unset variable at once. */
function substituteEnv(
  tree: unknown,
  root: Path,
  env: EnvLookup,
  source: string,
  at: (path: Path, message: string) => string,
): unknown {
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
      if (value === undefined) {
        missing.push(at(path, `${formatPath(path)}: environment variable ${name} is not set`));
      }
      return value;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
    }
    return node;
  };
  const result = walk(tree, root);
  if (missing.length > 0) throw new ConfigError(source, missing);
  return result;
}
