/** A multipart upload made up as it is sent: `size` bytes of file content, never held whole by the test. */

export function generatedUpload(
  size: number,
  options: { field?: string; filename?: string; fields?: Record<string, string>; boundary?: string } = {},
): { body: ReadableStream<Uint8Array>; type: string; length: number } {
  const boundary = options.boundary ?? "llmproxy-test-boundary";
  const encoder = new TextEncoder();
  const fields = Object.entries(options.fields ?? { purpose: "batch" }).map(([name, value]) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  ).join("");
  const head = encoder.encode(
    fields +
      `--${boundary}\r\nContent-Disposition: form-data; name="${options.field ?? "file"}"; ` +
      `filename="${options.filename ?? "big.jsonl"}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const piece = new Uint8Array(64 * 1024).fill(120);
  let sent = 0;
  let started = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!started) {
        started = true;
        return controller.enqueue(head);
      }
      if (sent < size) {
        const n = Math.min(piece.length, size - sent);
        sent += n;
        return controller.enqueue(n === piece.length ? piece.slice() : piece.slice(0, n));
      }
      controller.enqueue(tail);
      controller.close();
    },
  });
  return {
    body,
    type: `multipart/form-data; boundary=${boundary}`,
    length: head.length + size + tail.length,
  };
}
