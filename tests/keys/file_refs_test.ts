import assert from "node:assert/strict";
import { fileRefs } from "../../src/keys/file_refs.ts";
import { test } from "../_support/test.ts";

test("fileRefs finds the files a chat or Responses body names, with where", () => {
  const chat = {
    messages: [
      { role: "system", content: "be brief" },
      { role: "user", content: [{ type: "text", text: "x" }, { type: "file", file: { file_id: "file-a" } }] },
    ],
  };
  assert.deepEqual(fileRefs(chat), [{ id: "file-a", param: "messages[1].content[1].file.file_id" }]);
  const responses = {
    input: [
      { type: "input_file", file_id: "file-b" },
      {
        role: "user",
        content: [{ type: "input_image", file_id: "file-c" }, { type: "input_text", text: "y" }],
      },
    ],
  };
  assert.deepEqual(fileRefs(responses), [
    { id: "file-b", param: "input[0].file_id" },
    { id: "file-c", param: "input[1].content[0].file_id" },
  ]);
  assert.deepEqual(fileRefs({ input: "just text" }), []);
  assert.deepEqual(
    fileRefs({ messages: [{ role: "user", content: [{ type: "file", file: { file_data: "..." } }] }] }),
    [],
  );
});
