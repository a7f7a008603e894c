/** The one error a config file can fail with: every problem found, one readable line each, naming the file. */

export class ConfigError extends Error {
  readonly source: string;
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    const head = `Cannot load config '${source}':`;
    super(
      problems.length === 1
        ? `${head} ${problems[0]}`
        : `${head} ${problems.length} problems\n  ${problems.join("\n  ")}`,
    );
    this.name = "ConfigError";
    this.source = source;
    this.problems = problems;
  }
}
