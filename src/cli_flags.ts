/**
 * Flags of the command-line entry points (main.ts and the scripts), parsed one way: strictly, a bad flag printing
 * its message and the usage (exit code 2), `--help` printing the usage (exit code 0).
 *
 * Long options only (`--name value`, `--name=value`, booleans as `--name`), no positional arguments, with the
 * messages of Node's `util.parseArgs` in strict mode, which this replaces: `node:util` loads Deno's Node
 * compatibility layer at start, about 1.5 MiB of resident memory (issue 22).
 */

export interface FlagOption {
  readonly type: "string" | "boolean";
  readonly default?: string | boolean;
}

/** The parsed flags: a string or boolean per option, `undefined` where it was not given and has no default. */
export type Flags<T extends Record<string, FlagOption>> = {
  [K in keyof T]: T[K] extends { type: "boolean" }
    ? (T[K] extends { default: boolean } ? boolean : boolean | undefined)
    : (T[K] extends { default: string } ? string : string | undefined);
};

/** The parsed flags, or the exit code when the program should stop here. */
export function readFlags<const T extends Record<string, FlagOption>>(
  args: string[],
  options: T,
  usage: string,
): Flags<T> | number {
  let values: Flags<T>;
  try {
    values = parseFlags(args, options);
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

/** Parses `args` against `options`; throws an `Error` with the message to show on the first bad argument. */
export function parseFlags<const T extends Record<string, FlagOption>>(
  args: readonly string[],
  options: T,
): Flags<T> {
  const values: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      if (i + 1 < args.length) throw unexpected(args[i + 1]);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") throw unexpected(arg);
    // `-x` and `-xyz` (short options, none defined): the first letter is the unknown option.
    if (!arg.startsWith("--")) throw new Error(`Unknown option '${arg.slice(0, 2)}'`);
    const equals = arg.indexOf("=", 3);
    const rawName = equals === -1 ? arg : arg.slice(0, equals);
    const name = rawName.slice(2);
    const option = Object.hasOwn(options, name) ? options[name] : undefined;
    if (option === undefined) throw new Error(`Unknown option '${rawName}'`);
    if (option.type === "boolean") {
      if (equals !== -1) throw new Error(`Option '${rawName}' does not take an argument`);
      values[name] = true;
    } else if (equals !== -1) {
      values[name] = arg.slice(equals + 1);
    } else {
      const value = args[++i];
      if (value === undefined) throw new Error(`Option '${rawName} <value>' argument missing`);
      if (value.length > 1 && value.startsWith("-")) {
        throw new Error(
          `Option '${rawName}' argument is ambiguous.\nDid you forget to specify the option argument for ` +
            `'${rawName}'?\nTo specify an option argument starting with a dash use '${rawName}=-XYZ'.`,
        );
      }
      values[name] = value;
    }
  }
  for (const [name, option] of Object.entries(options)) {
    if (values[name] === undefined && option.default !== undefined) values[name] = option.default;
  }
  return values as Flags<T>;
}

const unexpected = (arg: string) =>
  new Error(`Unexpected argument '${arg}'. This command does not take positional arguments`);
