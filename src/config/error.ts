/** The one error a config file can fail with: every problem found, one readable line each, naming the file. */

import type { Path, Problem } from "./messages.ts";

export class ConfigError extends Error {
  readonly source: string;
  readonly problems: readonly string[];
  /** The place each problem is about, where it was found after the schema (`Problem`); the line is added from it. */
  readonly paths: readonly (Path | undefined)[];

  constructor(source: string, found: readonly (string | Problem)[]) {
    const problems = found.map((problem) => typeof problem === "string" ? problem : problem.message);
    const head = `Cannot load config '${source}':`;
    super(
      problems.length === 1
        ? `${head} ${problems[0]}`
        : `${head} ${problems.length} problems\n  ${problems.join("\n  ")}`,
    );
    this.name = "ConfigError";
    this.source = source;
    this.problems = problems;
    this.paths = found.map((problem) => typeof problem === "string" ? undefined : problem.path);
  }
}
