/**
 * A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with `openssl` in a temp
 * directory for one test file (about 100 ms with EC keys). Paths to the PEM files; `dispose` removes them.
 */

export interface TestCerts extends AsyncDisposable {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "llmproxy-certs-" });
  const at = (name: string) => `${dir}/${name}`;
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  };
  try {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl(
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca-key.pem",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=llmproxy test CA",
    );
    for (
      const [name, usage, san] of [
        ["server", "serverAuth,clientAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"],
        ["client", "clientAuth", ""],
      ]
    ) {
      await openssl(
        "req",
        ...ec,
        "-keyout",
        `${name}-key.pem`,
        "-out",
        `${name}.csr`,
        "-subj",
        `/CN=${name}`,
      );
      await Deno.writeTextFile(
        at(`${name}.ext`),
        `${san}basicConstraints=CA:FALSE\nextendedKeyUsage=${usage}\n`,
      );
      await openssl(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        `${name}.pem`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      );
    }
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    dir,
    ca: at("ca.pem"),
    serverCert: at("server.pem"),
    serverKey: at("server-key.pem"),
    clientCert: at("client.pem"),
    clientKey: at("client-key.pem"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}
