/** Whether to trace, decided once at start-up from the environment (kept apart so deciding loads nothing). */

/** Deno's OpenTelemetry is on (`OTEL_DENO=true` or `1`) and not switched off (`OTEL_SDK_DISABLED=true`). */
export function tracingWanted(env: (name: string) => string | undefined): boolean {
  const on = env("OTEL_DENO");
  return (on === "true" || on === "1") && env("OTEL_SDK_DISABLED") !== "true";
}
