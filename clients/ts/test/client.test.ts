// @relais/client against a live server, as an application installs it: this file is compiled and run
// (node --test) in a fresh npm project where the packed tarball is installed
// (tests/clients/test_packages.py). RELAIS_GRPC_URL, RELAIS_HTTP_URL, RELAIS_EMAIL, RELAIS_PASSWORD name the server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Code, ConnectError, createRelaisClient } from "@relais/client";
import { HealthStatus } from "@relais/client/gen/relais/v1/system_pb";
import { createRestClient, readEvents } from "@relais/client/rest";

const grpcUrl = required("RELAIS_GRPC_URL");
const httpUrl = required("RELAIS_HTTP_URL");
const email = required("RELAIS_EMAIL");
const password = required("RELAIS_PASSWORD");

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function signIn(): Promise<string> {
  const anonymous = createRelaisClient({ baseUrl: grpcUrl, timeoutMs: 10_000 });
  const answer = await anonymous.auth.login({ email, password });
  assert.ok(answer.accessToken.length > 20);
  return answer.accessToken;
}

test("gRPC unary calls: health, then signed-in calls with per-call options", async () => {
  const token = await signIn();
  const relais = createRelaisClient({ baseUrl: grpcUrl, token, timeoutMs: 10_000 });

  const health = await relais.system.getHealth({});
  const me = await relais.users.getProfile({}, { timeoutMs: 5_000, headers: { "x-request-id": "ts-client-test" } });
  const models = await relais.models.listModels({});

  assert.ok(health.dbOk);
  assert.notEqual(health.status, HealthStatus.UNSPECIFIED);
  assert.equal(me.email, email);
  assert.ok(models.models.some((model) => model.key === "auto"));
});

test("gRPC server streaming: tokens, then the final message", async () => {
  const relais = createRelaisClient({ baseUrl: grpcUrl, token: await signIn() });
  const kinds: string[] = [];
  let text = "";

  for await (const event of relais.inference.generateStream(
    { prompt: "The capital of France is", maxTokens: 4 },
    { timeoutMs: 240_000 },
  )) {
    kinds.push(event.event.case ?? "none");
    if (event.event.case === "token") text += event.event.value.text;
  }

  assert.ok(kinds.includes("token"), kinds.join(","));
  assert.equal(kinds.at(-1), "final");
  assert.ok(text.length > 0);
});

test("gRPC errors are ConnectError with the status code", async () => {
  const anonymous = createRelaisClient({ baseUrl: grpcUrl, timeoutMs: 10_000 });

  const wrong = await anonymous.auth.login({ email, password: "not-the-password" }).catch((error: unknown) => error);
  const unsigned = await anonymous.users.getProfile({}).catch((error: unknown) => error);

  assert.ok(wrong instanceof ConnectError);
  assert.equal(wrong.code, Code.Unauthenticated);
  assert.ok(unsigned instanceof ConnectError);
  assert.equal(unsigned.code, Code.Unauthenticated);
});

test("REST: typed calls, a typed error body and a server-sent event stream", async () => {
  const anonymous = createRestClient({ baseUrl: httpUrl });
  const login = await anonymous.POST("/auth/login", { body: { email, password } });
  assert.equal(login.response.status, 200);
  const token = login.data?.access_token;
  assert.ok(token);
  const rest = createRestClient({ baseUrl: httpUrl, token });

  const models = await rest.GET("/api/models");
  const refused = await anonymous.GET("/auth/me");
  const streamed = await rest.POST("/llm/stream", {
    body: { prompt: "Once upon a time", max_tokens: 4 },
    parseAs: "stream",
  });
  const events = [];
  for await (const event of readEvents(streamed.response)) events.push(event);

  assert.ok(models.data?.models?.some((model) => model.key === "auto"));
  assert.equal(refused.response.status, 401);
  assert.equal(refused.error?.code, "AUTHENTICATION_ERROR");
  assert.equal(streamed.response.headers.get("content-type")?.split(";")[0], "text/event-stream");
  assert.ok(events.length >= 2, JSON.stringify(events));
});
