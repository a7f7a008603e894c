/**
 * A client key pages its files one at a time, the next page through another instance whose Redis answers past its
 * wait bound: where the list stood on each resource (`lst:`) is waited for, so the page goes on on every resource
 * of the group. Before, that instance read no record and went on on the `after` file's resource alone, and the
 * files on the other resource were silently left out of the list.
 */

import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis, startRedis } from "../_support/redis.ts";
import { slowLink } from "../_support/slow_link.ts";
import { test } from "../_support/test.ts";

test({
  name: "files list: the next page through an instance whose Redis is slow still covers every resource",
  ignore: !hasRedis,
  timeout: 30_000,
  async fn() {
    await using redis = await startRedis();
    await using link = slowLink(redis.port, 400);
    await using east = await SimUpstream.start({ name: "east", quiet: true });
    // Another resource (its own base URL): each holds its own files.
    await using west = await SimUpstream.start({ name: "west", quiet: true });
    const yaml = (url: string) =>
      groupYaml(
        [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
        [`redis_url: ${url}`],
      ) + "keys:\n  - {name: team-a, key: team-a-key}\n";
    await using first = await startProxy(yaml(redis.url));
    await using second = await startProxy(yaml(`redis://127.0.0.1:${link.port}`));
    const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "team-a-key", maxRetries: 0 });
    const made = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const file = await client(first.url).files.create({
        file: await toFile(new TextEncoder().encode("%PDF-1.4"), `doc-${i}.pdf`),
        purpose: "user_data",
      });
      made.add(file.id);
    }
    assert.ok([...made].some((id) => id.includes("east")) && [...made].some((id) => id.includes("west")));
    const page = await client(first.url).files.list({ limit: 1 });
    assert.equal(page.data.length, 1);
    const after = page.data[0].id;
    // The rest, asked of the other instance.
    const rest = await client(second.url).files.list({ limit: 10, after });
    const listed = new Set([after, ...rest.data.map((file) => file.id)]);
    assert.deepEqual([...listed].sort(), [...made].sort(), "every file listed once, from both resources");
  },
});
