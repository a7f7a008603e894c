/** What a caller hears when a request body is JSON but not an object: the kind of value it sent, named rightly. */

import assert from "node:assert/strict";
import { parseJsonObject } from "../../src/http/body.ts";
import { test } from "../_support/test.ts";

function refusal(text: string): string {
  try {
    parseJsonObject(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`accepted: ${text}`);
}

test("a JSON body that is not an object is refused naming what it is (null is null, not an object)", () => {
  assert.equal(refusal("null"), "Request body must be a JSON object, got null");
  assert.equal(refusal("[1]"), "Request body must be a JSON object, got an array");
  assert.equal(refusal('"text"'), "Request body must be a JSON object, got string");
  assert.equal(refusal("5"), "Request body must be a JSON object, got number");
  assert.equal(refusal("true"), "Request body must be a JSON object, got boolean");
  assert.deepEqual(parseJsonObject('{"model":"m"}'), { model: "m" });
});
