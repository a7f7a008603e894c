/**
 * Flags of the command-line entry points (main.ts and the scripts), parsed one way: strictly, a bad flag printing
 * its message and the usage (exit code 2), `--help` printing the usage (exit code 0).
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** What `parseArgs` gives for `options`, parsed strictly without positionals. */
export type Flags<T extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>["values"];

/** The parsed flags, or the exit code when the program should stop here. */
export function readFlags<const T extends ParseArgsOptionsConfig>(
  args: string[],
  options: T,
  usage: string,
): Flags<T> | number {
  let values: Flags<T>;
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if ((values as { help?: unknown }).help === true) {
    console.log(usage);
    return 0;
  }
  return values;
}
