/**
 * What the stages read of a client's request headers: a value by name (values of a name sent twice joined with
 * ", ", null when absent), as `Headers.get` answers. A `Headers` is one; so is the generation routes' view of a
 * served request's headers (http/header_pairs.ts), which reads them without making a `Headers` object.
 */
export interface HeaderReader {
  get(name: string): string | null;
}
