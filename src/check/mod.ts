/**
 * A small validator for the config file and the admin routes' bodies, in place of zod: the same issue shapes and
 * English messages for the subset the proxy uses, without loading a schema library at start (issue 22.4a: idle
 * memory). Schemas are plain objects built at import; nothing is compiled or generated.
 */

export type { FinalIssue, Issue, IssuePath } from "./issue.ts";
export { type AnySchema, type Check, type Output, type ParseResult, Schema } from "./schema.ts";
export { boolean, number, oneOf, string, type StringSchema } from "./primitives.ts";
export { int, maximum, minimum, minLength, positive, refine, regex, superRefine } from "./checks.ts";
export { nullable, optional, preprocess, withDefault, Wrapper } from "./wrappers.ts";
export { type ObjectOutput, type Shape, StrictObject, strictObject } from "./object.ts";
export { array, ArrayOf, record } from "./collections.ts";
