/** Sends `head` (a whole HTTP/1.1 request, `Connection: close`) on a raw connection to `port` and reads to its close. */
export async function rawRequest(port: number, head: string): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(head));
    await new Response(conn.readable).arrayBuffer();
  } finally {
    try {
      conn.close();
    } catch {
      // closed by reading to the end
    }
  }
}
