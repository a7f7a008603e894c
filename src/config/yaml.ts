/**
 * Any YAML file, read by js-yaml: what `block_yaml.ts` leaves (anchors, flow collections, block scalars, escapes,
 * syntax errors). Loaded on first use: js-yaml builds its tables when its module loads (issue 22.4a).
 */

// @ts-types="@types/js-yaml"
import { CORE_SCHEMA, load, Type, YAMLException } from "js-yaml";
import { ConfigError } from "./error.ts";

/**
 * YAML 1.2's core schema plus merge keys (`<<: *anchor`). js-yaml is plain ESM: `yaml`'s Deno build is CommonJS,
 * which loads Deno's Node compatibility layer at start (+3.5 MiB idle RSS, issue 22.4a).
 */
const SCHEMA = CORE_SCHEMA.extend({
  implicit: [new Type("tag:yaml.org,2002:merge", { kind: "scalar", resolve: (data) => data === "<<" })],
});

/** The document's value; a syntax error is a `ConfigError` naming `source`, the line and the column. */
export function parseYaml(text: string, source: string): unknown {
  try {
    return load(text, { schema: SCHEMA });
  } catch (error) {
    if (!(error instanceof YAMLException)) throw error;
    const { mark } = error;
    const where = mark && mark.line >= 0 ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : "";
    throw new ConfigError(source, [`YAML syntax error${where}: ${error.reason}`]);
  }
}
