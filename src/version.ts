/** The release version, kept in step with deno.json by hand (the binary reads no files at run time). */
export const VERSION = "0.1.0";
