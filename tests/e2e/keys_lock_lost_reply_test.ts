/**
 * A runtime key change takes a short lock in Redis (`keys:lock`, 5 s TTL). When the connection drops after Redis
 * ran the lock's SET but before its reply came back, the instance cannot know it holds the lock, and its release
 * failed at once (no connection): the lock stayed until its TTL, and every change on every instance got 503
 * `keys_busy` for up to 5 s. The instance now owes the release and gives it back as soon as Redis answers again
 * (its 250 ms check, or its next change). A link in front of Redis forwards the SET and then cuts the connection,
 * so the reply is lost.
 */

import assert from "node:assert/strict";
import { delay, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const ADMIN = "sk-admin-lock-lost-6a1";

/** A relay to Redis that, once armed, forwards the next chunk naming the lock and then cuts its connection. */
function cuttingLink(targetPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const state = { armed: false, cut: 0 };
  const closeAll = (conns: Deno.Conn[]) => {
    for (const conn of conns) {
      open.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const relay = async (client: Deno.Conn) => {
    const target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort }).catch(() => null);
    if (!target) return closeAll([client]);
    open.add(client).add(target);
    let muted = false;
    (async () => {
      const reply = target.readable.getReader();
      const writer = client.writable.getWriter();
      try {
        for (let read = await reply.read(); !read.done; read = await reply.read()) {
          if (!muted) await writer.write(read.value);
        }
      } catch { /* closed */ }
      closeAll([client, target]);
    })();
    const writer = target.writable.getWriter();
    try {
      for await (const chunk of client.readable) {
        const text = new TextDecoder().decode(chunk);
        const cut = state.armed && text.includes("keys:lock") && text.includes("NX");
        if (cut) muted = true;
        await writer.write(chunk);
        if (cut) {
          state.armed = false;
          state.cut++;
          await delay(50); // Redis runs the SET; its reply is dropped
          break;
        }
      }
    } catch { /* closed */ }
    closeAll([client, target]);
  };
  (async () => {
    try {
      for await (const conn of listener) relay(conn);
    } catch { /* listener closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    state,
    close: () => {
      listener.close();
      closeAll([...open]);
    },
  };
}

test({
  name:
    "runtime keys: a lock whose SET reply was lost is given back once Redis answers, not held 5 s (keys_busy)",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using sim = await SimUpstream.start({ name: "east", quiet: true, record: false });
    const link = cuttingLink(redis.port);
    try {
      const yaml = (port: number) =>
        [
          "model_groups:",
          "  - model_group: gpt-test",
          "    models:",
          endpointYaml(sim.url, { name: "east" }),
          "general_settings:",
          `  redis_url: redis://127.0.0.1:${port}`,
          `  admin_keys: [${ADMIN}]`,
        ].join("\n") + "\n";
      // A reaches Redis through the link; B directly.
      await using a = await startProxy(yaml(link.port), { logLevel: "error" });
      await using b = await startProxy(yaml(redis.port), { logLevel: "error" });
      const create = async (url: string, name: string) => {
        const response = await fetch(`${url}/admin/keys`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
          body: JSON.stringify({ name }),
        });
        return { status: response.status, body: await response.json() };
      };

      assert.equal((await create(a.url, "first")).status, 201);
      link.state.armed = true;
      const lost = await create(a.url, "second");
      assert.equal(link.state.cut, 1, "the link cut the connection after the lock's SET");
      assert.equal(lost.status, 503, JSON.stringify(lost.body));
      assert.equal(lost.body.error.code, "store_unavailable");

      // A reconnects and gives the lock back within a check or two; B can change keys well before the 5 s TTL.
      const cutAt = Date.now();
      while (await redis.command("EXISTS", "llmproxy:keys:lock") !== "0") {
        if (Date.now() - cutAt > 8000) break;
        await delay(50);
      }
      const released = Date.now() - cutAt;
      const fromB = await create(b.url, "third");
      assert.equal(fromB.status, 201, `${JSON.stringify(fromB.body)} (lock gone after ${released} ms)`);
      assert.ok(released < 2500, `the lock was held ${released} ms after the lost reply`);
      assert.equal((await create(a.url, "fourth")).status, 201);
    } finally {
      link.close();
    }
  },
});
