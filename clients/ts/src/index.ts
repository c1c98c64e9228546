/**
 * @relais/client for Node.js: a typed client for every Relais service over gRPC (Connect's gRPC
 * transport on HTTP/2), with protobuf-es messages.
 *
 *     const relais = createRelaisClient({ baseUrl: "http://localhost:50051", token });
 *     const health = await relais.system.getHealth({});
 *     for await (const event of relais.inference.generateStream({ prompt: "Hello" }, { timeoutMs: 60_000 })) {
 *       if (event.event.case === "token") process.stdout.write(event.event.value.text);
 *     }
 *
 * Every method takes Connect's CallOptions ({ timeoutMs, headers, signal }); errors are
 * ConnectError with a `code`. Messages and service descriptors: "@relais/client/gen/relais/v1/<file>_pb".
 * Browsers use the REST client in "@relais/client/rest".
 */

import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccessService } from "./gen/relais/v1/access_pb.js";
import { AdminUserService } from "./gen/relais/v1/admin_user_pb.js";
import { AgentService } from "./gen/relais/v1/agent_pb.js";
import { ApiKeyService } from "./gen/relais/v1/api_key_pb.js";
import { AuthService } from "./gen/relais/v1/auth_pb.js";
import { BackupService } from "./gen/relais/v1/backup_pb.js";
import { ChatService, ConversationService, MessageService } from "./gen/relais/v1/chat_pb.js";
import { HistoryService } from "./gen/relais/v1/history_pb.js";
import { InferenceService } from "./gen/relais/v1/inference_pb.js";
import { EventService, LiveService } from "./gen/relais/v1/live_pb.js";
import { ModelService } from "./gen/relais/v1/model_pb.js";
import { DocumentService, MemoryService, RetrievalService } from "./gen/relais/v1/retrieval_pb.js";
import { RoleService } from "./gen/relais/v1/role_pb.js";
import { SessionService } from "./gen/relais/v1/session_pb.js";
import { SystemService } from "./gen/relais/v1/system_pb.js";
import { UserService } from "./gen/relais/v1/user_pb.js";

export { Code, ConnectError } from "@connectrpc/connect";
export type { CallOptions, Client, Interceptor, Transport } from "@connectrpc/connect";

export interface RelaisOptions {
  /** The gRPC server: "http://host:50051" (plaintext HTTP/2), or "https://…" behind TLS. */
  baseUrl: string;
  /** An access token (from AuthService.Login), sent as `authorization: Bearer …`. */
  token?: string;
  /** An API key, sent as `x-api-key`. */
  apiKey?: string;
  /** Deadline of every call in milliseconds, unless the call gives its own `timeoutMs`. */
  timeoutMs?: number;
  /** Headers sent with every call (a call's own `headers` are added to them). */
  headers?: Record<string, string>;
  /** More Connect interceptors, run after the credentials are set. */
  interceptors?: Interceptor[];
}

/** The services of the Relais contract, by the name a client uses for each. */
const services = {
  access: AccessService,
  adminUsers: AdminUserService,
  agents: AgentService,
  apiKeys: ApiKeyService,
  auth: AuthService,
  backup: BackupService,
  chats: ChatService,
  conversations: ConversationService,
  documents: DocumentService,
  events: EventService,
  history: HistoryService,
  inference: InferenceService,
  live: LiveService,
  memory: MemoryService,
  messages: MessageService,
  models: ModelService,
  retrieval: RetrievalService,
  roles: RoleService,
  sessions: SessionService,
  system: SystemService,
  users: UserService,
} as const;

export type RelaisClient = { readonly [Name in keyof typeof services]: Client<(typeof services)[Name]> };

/** Connect's gRPC transport for Node.js, with credentials, default headers and deadline. */
export function createRelaisTransport(options: RelaisOptions): Transport {
  const fixed = new Headers(options.headers);
  if (options.token) fixed.set("authorization", `Bearer ${options.token}`);
  if (options.apiKey) fixed.set("x-api-key", options.apiKey);
  const credentials: Interceptor = (next) => (request) => {
    fixed.forEach((value, name) => {
      if (!request.header.has(name)) request.header.set(name, value);
    });
    return next(request);
  };
  return createGrpcTransport({
    baseUrl: options.baseUrl,
    defaultTimeoutMs: options.timeoutMs,
    interceptors: [credentials, ...(options.interceptors ?? [])],
  });
}

/** One typed client per service, all on one transport (one HTTP/2 connection). */
export function createRelaisClient(options: RelaisOptions | { transport: Transport }): RelaisClient {
  const transport = "transport" in options ? options.transport : createRelaisTransport(options);
  const entries = Object.entries(services).map(([name, service]) => [name, createClient(service, transport)]);
  return Object.fromEntries(entries) as RelaisClient;
}
