import { EventEmitter, once } from "node:events";
import Fastify from "fastify";
import { Agent, type Dispatcher, request } from "undici";
import type { FaultEvent } from "../../src/faults/index.ts";

export type Hit = { method: string; url: string; headers: Record<string, unknown>; body: string };

/** A plain HTTP service that records every request it handles and echoes it back. */
export async function startTarget() {
  const hits: Hit[] = [];
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
  app.all("/*", async (req, reply) => {
    const hit = { method: req.method, url: req.url, headers: req.headers, body: (req.body as string) ?? "" };
    hits.push(hit);
    reply.header("x-target", "echo");
    reply.code(req.url.startsWith("/created") ? 201 : 200);
    return hit;
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (typeof address !== "object" || address === null) throw new Error("target did not bind");
  return { url: `http://127.0.0.1:${address.port}`, hits, stop: () => app.close() };
}

export type SendOptions = {
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: string;
  /** Ends the wait for an answer, as a client's own timeout does. */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
};

/** Sends one request, resolving to its status and body, or to the error code the client saw. */
export async function send(url: string, options: SendOptions = {}) {
  try {
    const response = await request(url, {
      method: options.method ?? "GET",
      headers: options.headers,
      body: options.body,
      headersTimeout: options.timeoutMs,
      dispatcher: options.dispatcher,
    });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  } catch (error) {
    return { error: (error as { code?: string }).code ?? String(error) };
  }
}

/** Fault events as an emitter, so a test can wait for the proxy to have applied one. */
export function faultEvents() {
  const emitter = new EventEmitter();
  return {
    onFault: (event: FaultEvent) => emitter.emit("fault", event),
    next: async () => ((await once(emitter, "fault")) as [FaultEvent])[0],
  };
}

/** A keep-alive agent of its own per test file, so pooled connections never leak between files. */
export const newAgent = () => new Agent({ keepAliveTimeout: 10_000 });
