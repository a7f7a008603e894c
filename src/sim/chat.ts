/**
 * Chat Completions answers of the simulated upstream: a `chat.completion` object, or the SSE frames of a
 * `chat.completion.chunk` stream ending in `data: [DONE]`. Shapes follow the openai SDK's types.
 */

import {
  brief,
  contentText,
  echoText,
  isObject,
  type Json,
  sampleFromSchema,
  type SimContext,
  splitPieces,
  tokens,
  toolResultText,
} from "./content.ts";

interface ChatPlan {
  readonly text: string | null;
  readonly tool: { readonly id: string; readonly name: string; readonly arguments: string } | null;
  readonly reasoning: string | null;
  /** Padding for short texts split over many chunks: a space when the text is JSON. */
  readonly pad: string;
}

/** Decides what to say: a tool call when tools are offered (and no tool result came back yet), else text. */
function plan(body: Json, ctx: SimContext): ChatPlan {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const last = messages.at(-1);
  const reasoning = typeof body.reasoning_effort === "string"
    ? `Thinking about it with ${body.reasoning_effort} effort.`
    : null;
  if (isObject(last) && last.role === "tool") {
    return { text: toolResultText(ctx.name, contentText(last.content)), tool: null, reasoning, pad: "." };
  }
  let userText = "";
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (isObject(message) && message.role === "user") {
      userText = brief(contentText(message.content));
      break;
    }
  }
  const tool = body.tool_choice === "none" ? undefined : firstFunction(body.tools);
  if (tool) {
    const args = sampleFromSchema(tool.parameters ?? { type: "object" }, userText);
    const call = { id: ctx.id("call"), name: tool.name, arguments: JSON.stringify(args) };
    return { text: null, tool: call, reasoning, pad: " " };
  }
  const format = isObject(body.response_format) ? body.response_format : undefined;
  if (format?.type === "json_schema" && isObject(format.json_schema)) {
    const text = JSON.stringify(sampleFromSchema(format.json_schema.schema, userText));
    return { text, tool: null, reasoning, pad: " " };
  }
  if (format?.type === "json_object") {
    return { text: JSON.stringify({ sim: ctx.name, echo: userText }), tool: null, reasoning, pad: " " };
  }
  return { text: echoText(ctx.name, userText), tool: null, reasoning, pad: "." };
}

function firstFunction(tools: unknown): { name: string; parameters: unknown } | undefined {
  if (!Array.isArray(tools)) return undefined;
  for (const tool of tools) {
    if (isObject(tool) && tool.type === "function" && isObject(tool.function)) {
      const fn = tool.function;
      if (typeof fn.name === "string") return { name: fn.name, parameters: fn.parameters };
    }
  }
  return undefined;
}

function usage(p: ChatPlan, ctx: SimContext) {
  const prompt = tokens(ctx.bodyLength);
  const reasoning = p.reasoning ? tokens(p.reasoning.length) : 0;
  const completion = tokens((p.text ?? p.tool?.arguments ?? "").length) + reasoning;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A complete `chat.completion`. */
export function chatCompletion(body: Json, model: string, ctx: SimContext): Json {
  const p = plan(body, ctx);
  const message: Json = { role: "assistant", content: p.text, refusal: null, annotations: [] };
  if (p.reasoning) message.reasoning_content = p.reasoning;
  if (p.tool) {
    message.tool_calls = [{
      id: p.tool.id,
      type: "function",
      function: { name: p.tool.name, arguments: p.tool.arguments },
    }];
  }
  return {
    id: ctx.id("chatcmpl"),
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: p.tool ? "tool_calls" : "stop" }],
    usage: usage(p, ctx),
    service_tier: "default",
    system_fingerprint: "fp_sim",
  };
}

/**
 * The SSE frames (`data: {...}\n\n`) of a streamed answer: a role chunk, `ctx.chunks` content (or tool-argument)
 * chunks, a finish chunk, a usage chunk when `stream_options.include_usage`, then `data: [DONE]`.
 */
export function chatStreamFrames(body: Json, model: string, ctx: SimContext): string[] {
  const p = plan(body, ctx);
  const includeUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
  const head = `data: {"id":${
    JSON.stringify(ctx.id("chatcmpl"))
  },"object":"chat.completion.chunk","created":${Math.floor(Date.now() / 1000)},"model":${
    JSON.stringify(model)
  },"service_tier":"default","system_fingerprint":"fp_sim","choices":[`;
  const tail = includeUsage ? `],"usage":null}\n\n` : `]}\n\n`;
  const frame = (delta: Json, finish: string | null = null) =>
    head + JSON.stringify({ index: 0, delta, logprobs: null, finish_reason: finish }) + tail;

  const frames: string[] = [];
  const thoughts = p.reasoning ? splitPieces(p.reasoning, 2) : null;
  const first: Json = p.tool
    ? {
      role: "assistant",
      content: null,
      tool_calls: [{
        index: 0,
        id: p.tool.id,
        type: "function",
        function: { name: p.tool.name, arguments: "" },
      }],
    }
    : { role: "assistant", content: "", refusal: null };
  if (thoughts) first.reasoning_content = thoughts[0];
  frames.push(frame(first));
  if (thoughts) frames.push(frame({ reasoning_content: thoughts[1] }));
  if (p.tool) {
    for (const piece of splitPieces(p.tool.arguments, ctx.chunks, p.pad)) {
      frames.push(frame({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
    }
  } else {
    for (const piece of splitPieces(p.text ?? "", ctx.chunks, p.pad)) frames.push(frame({ content: piece }));
  }
  frames.push(frame({}, p.tool ? "tool_calls" : "stop"));
  if (includeUsage) frames.push(head + `],"usage":${JSON.stringify(usage(p, ctx))}}\n\n`);
  frames.push("data: [DONE]\n\n");
  return frames;
}
