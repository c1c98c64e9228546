// The official `openai` npm package against a live Relais (RELAIS_BASE_URL, RELAIS_API_KEY):
// models, a chat completion, a stream with its usage, a forced tool call, a JSON Schema answer,
// embeddings (the package asks for base64 and decodes it) and an error. Prints one JSON object.
import assert from "node:assert/strict";
import OpenAI from "openai";

const MODEL = "gemma3-270m";
const client = new OpenAI({ baseURL: `${process.env.RELAIS_BASE_URL}/v1`, apiKey: process.env.RELAIS_API_KEY, maxRetries: 0 });
const messages = [
  { role: "system", content: "You answer in one short sentence." },
  { role: "user", content: "What is the capital of France?" },
];
const out = {};

const models = [];
for await (const model of client.models.list()) models.push(model.id);
out.models = models;

const completion = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0 });
out.completion = {
  object: completion.object,
  content: completion.choices[0].message.content,
  finish: completion.choices[0].finish_reason,
  usage: completion.usage,
};

const stream = await client.chat.completions.create({
  model: MODEL, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
});
const pieces = [];
let usage = null;
let finish = null;
for await (const chunk of stream) {
  if (chunk.choices.length) {
    pieces.push(chunk.choices[0].delta.content ?? "");
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  if (chunk.usage) usage = chunk.usage;
}
out.stream = { pieces: pieces.filter((piece) => piece).length, text: pieces.join(""), finish, usage };

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 40 } }, required: ["city"] },
  },
};
const called = await client.chat.completions.create({
  model: MODEL,
  messages: [{ role: "user", content: "What is the weather in Lyon?" }],
  tools: [weather],
  tool_choice: { type: "function", function: { name: "get_weather" } },
});
const call = called.choices[0].message.tool_calls[0];
out.tool = { finish: called.choices[0].finish_reason, name: call.function.name, arguments: JSON.parse(call.function.arguments) };

const city = {
  type: "object",
  properties: { name: { type: "string", maxLength: 30 }, country: { type: "string", maxLength: 30 } },
  required: ["name", "country"],
  additionalProperties: false,
};
const structured = await client.chat.completions.create({
  model: MODEL,
  messages: [{ role: "user", content: "Describe Madrid as JSON." }],
  response_format: { type: "json_schema", json_schema: { name: "city", schema: city, strict: true } },
  max_tokens: 60,
  temperature: 0,
});
out.json = JSON.parse(structured.choices[0].message.content);

const embeddings = await client.embeddings.create({ model: "all-MiniLM-L6-v2", input: ["first text", "second text"] });
out.embeddings = {
  count: embeddings.data.length,
  dimensions: embeddings.data.map((item) => item.embedding.length),
  norm: Math.hypot(...embeddings.data[0].embedding),
};

try {
  await client.chat.completions.create({ model: "gpt-4o", messages });
  assert.fail("an unknown model was accepted");
} catch (error) {
  assert.ok(error instanceof OpenAI.NotFoundError, String(error));
  out.error = { status: error.status, code: error.code, type: error.type };
}

console.log(JSON.stringify(out));
