/** The proxy configurations the bench runs: one model group on the fake upstream, cache and store as asked. */

export interface BenchConfig {
  readonly upstreamUrl: string;
  readonly cache: boolean;
  /** Absent: the in-memory store. */
  readonly redisUrl?: string;
}

/** Deno flags the proxy runs with, as the tasks and the compiled binary run it (V8's young generation size). */
export { V8_FLAGS } from "../scripts/compile.ts";

/** The model group clients of the bench name. */
export const BENCH_GROUP = "bench";

export function configYaml(config: BenchConfig): string {
  return [
    "model_groups:",
    `  - model_group: ${BENCH_GROUP}`,
    "    models:",
    "      - model: gpt-4o-mini",
    "        weight: 1",
    "        params:",
    `          base_url: ${config.upstreamUrl}`,
    "          api_key: sk-bench-upstream",
    "          provider: openai",
    "general_settings:",
    "  bind_address: 127.0.0.1",
    `  cache: ${config.cache}`,
    ...(config.redisUrl ? [`  redis_url: ${config.redisUrl}`] : []),
  ].join("\n") + "\n";
}

/** Writes the YAML to a temporary file and returns its path (the caller removes it). */
export async function writeConfig(config: BenchConfig): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "llmproxy-bench-", suffix: ".yaml" });
  await Deno.writeTextFile(path, configYaml(config));
  return path;
}
