import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, startProxyProcess } from "../_support/proxy.ts";
import { rssMib } from "../_support/process_memory.ts";
import { rawUpload } from "../_support/raw_upload.ts";
import { slowUpstream } from "../_support/slow_upstream.ts";
import { test } from "../_support/test.ts";
import { generatedUpload } from "../_support/upload.ts";

const MiB = 1024 * 1024;
/** 96 MB in the suite; `LLMPROXY_UPLOAD_MB=200` for the figure. */
const UPLOAD_BYTES = Number(Deno.env.get("LLMPROXY_UPLOAD_MB") ?? 96) * MiB;
/** Growth allowed. Measured +10 MB for 200 MB; holding a quarter of a 96 MB upload fails it. */
const RSS_GROWTH_LIMIT_MIB = 24;
/** The slow upstream's pace, and what is sent to it. */
const SLOW_BYTES_PER_SECOND = 16 * MiB;
const SLOW_UPLOAD_BYTES = 40 * MiB;
/**
 * Most bytes the client may be ahead of the slow upstream: the kernel's socket buffers on both hops (the proxy
 * itself holds one chunk). A proxy that takes the upload in regardless runs ahead by nearly all of it.
 */
const SLOW_LAG_LIMIT = 16 * MiB;

/** Runs `action` while sampling the proxy's resident memory; its growth over the level before, in MiB. */
async function rssGrowth<T>(pid: number, action: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const baseline = await rssMib(pid);
  let peak = baseline;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rssMib(pid));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    return { result: await action(), growth: peak - baseline };
  } finally {
    sampling = false;
    await sampler;
  }
}

const yaml = (fast: string, slow: string) =>
  [
    "model_groups:",
    "  - model_group: fast",
    "    models:",
    endpointYaml(fast, { name: "fast" }),
    "  - model_group: slow",
    "    models:",
    endpointYaml(slow, { name: "slow" }),
    "general_settings:",
    "  cache: false",
  ].join("\n") + "\n";

test({
  name: "large uploads stream through the proxy process without being held, at the pace of the upstream",
  ignore: Deno.build.os !== "linux",
  timeout: 120_000,
  async fn(t) {
    await using sim = await SimUpstream.start({ name: "fast", quiet: true, record: false });
    await using slow = slowUpstream(SLOW_BYTES_PER_SECOND);
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/llmproxy.yaml`, yaml(sim.url, slow.url));
      await using proxy = await startProxyProcess(["--config", `${dir}/llmproxy.yaml`, "--port", "0"]);
      const pid = proxy.child.pid;
      const viaFetch = async (size: number) => {
        const upload = generatedUpload(size);
        const response = await fetch(proxy.url + "/v1/files", {
          method: "POST",
          headers: {
            "content-type": upload.type,
            authorization: "Bearer k",
            "x-llmproxy-model-group": "fast",
          },
          body: upload.body,
        });
        return { status: response.status, body: await response.json() };
      };
      // Warm up (code compiled, pools made) before any baseline is taken.
      for (let i = 0; i < 3; i++) assert.equal((await viaFetch(4 * MiB)).status, 200);
      const report = (what: string, growth: number, seconds: number) =>
        console.log(`${what}: ${seconds.toFixed(1)} s, proxy RSS growth ${growth.toFixed(1)} MB`);

      await t.step("chunked by fetch, 64 KiB chunks", async () => {
        const started = performance.now();
        const { result, growth } = await rssGrowth(pid, () => viaFetch(UPLOAD_BYTES));
        report(
          `${UPLOAD_BYTES / MiB} MB upload, chunked (fetch)`,
          growth,
          (performance.now() - started) / 1000,
        );
        assert.equal(result.status, 200, JSON.stringify(result.body));
        assert.equal(result.body.bytes, UPLOAD_BYTES);
        assert.ok(growth < RSS_GROWTH_LIMIT_MIB, `RSS grew ${growth.toFixed(1)} MB`);
      });

      await t.step("with a content-length, as the SDKs send a file", async () => {
        const started = performance.now();
        const { result, growth } = await rssGrowth(
          pid,
          () => rawUpload(proxy.url, { size: UPLOAD_BYTES, group: "fast" }).done,
        );
        report(
          `${UPLOAD_BYTES / MiB} MB upload, content-length`,
          growth,
          (performance.now() - started) / 1000,
        );
        assert.equal(result.status, 200, JSON.stringify(result.body));
        assert.equal(result.body.bytes, UPLOAD_BYTES);
        assert.ok(growth < RSS_GROWTH_LIMIT_MIB, `RSS grew ${growth.toFixed(1)} MB`);
      });

      await t.step("an audio form, its model rewritten on the way", async () => {
        const started = performance.now();
        const { result, growth } = await rssGrowth(pid, async () => {
          const upload = generatedUpload(UPLOAD_BYTES, { fields: { model: "fast" }, filename: "a.wav" });
          const response = await fetch(proxy.url + "/v1/audio/transcriptions", {
            method: "POST",
            headers: { "content-type": upload.type, authorization: "Bearer k" },
            body: upload.body,
          });
          return { status: response.status, body: await response.json() };
        });
        report(`${UPLOAD_BYTES / MiB} MB transcription form`, growth, (performance.now() - started) / 1000);
        assert.equal(result.status, 200, JSON.stringify(result.body));
        assert.match(result.body.text, new RegExp(`heard ${UPLOAD_BYTES} bytes`));
        assert.ok(growth < RSS_GROWTH_LIMIT_MIB, `RSS grew ${growth.toFixed(1)} MB`);
      });

      await t.step("a slow upstream slows the client down", async () => {
        const started = performance.now();
        const upload = rawUpload(proxy.url, { size: SLOW_UPLOAD_BYTES, group: "slow", chunk: 64 * 1024 });
        let lag = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            lag = Math.max(lag, upload.written - slow.received);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        })();
        const { result, growth } = await rssGrowth(pid, () => upload.done.finally(() => sampling = false));
        await sampler;
        const seconds = (performance.now() - started) / 1000;
        report(
          `${SLOW_UPLOAD_BYTES / MiB} MB upload to a ${SLOW_BYTES_PER_SECOND / MiB} MB/s upstream ` +
            `(client at most ${(lag / MiB).toFixed(1)} MB ahead)`,
          growth,
          seconds,
        );
        assert.equal(result.status, 200, JSON.stringify(result.body));
        assert.ok(lag < SLOW_LAG_LIMIT, `the client ran ${(lag / MiB).toFixed(1)} MB ahead of the upstream`);
        assert.ok(growth < RSS_GROWTH_LIMIT_MIB, `RSS grew ${growth.toFixed(1)} MB`);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
