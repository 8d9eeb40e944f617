import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JsonRpcBatcher, JsonRpcError } from "../../src/facilitator/exact-evm/rpc.ts";

type Call = { id: number; method: string; params: unknown[] };

let server: Server;
let url: string;
const bodies: unknown[] = [];
let refuseBatches = false;

/** A JSON-RPC node: `echo` returns its first param, `fail` errors with data, answers come in reverse order. */
beforeAll(async () => {
  server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk) => {
      text += chunk;
    });
    request.on("end", () => {
      const body = JSON.parse(text) as Call | Call[];
      bodies.push(body);
      const answer = (call: Call) =>
        call.method === "fail"
          ? {
              jsonrpc: "2.0",
              id: call.id,
              error: { code: 3, message: "execution reverted", data: "0x08c379a0" },
            }
          : { jsonrpc: "2.0", id: call.id, result: call.params[0] };
      const reply =
        Array.isArray(body) && refuseBatches
          ? { jsonrpc: "2.0", id: null, error: { code: -32600, message: "batches are not supported" } }
          : Array.isArray(body)
            ? body.map(answer).reverse()
            : answer(body);
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("JSON-RPC batcher", () => {
  it("sends the calls of one event-loop turn as batches and routes answers by id", async () => {
    const rpc = new JsonRpcBatcher(url, { maxInFlight: 2 });
    bodies.length = 0;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => rpc.request("echo", `["0x${i}"]`)),
    );
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => `0x${i}`));
    // Spread over the free connections: two batches of five.
    expect(bodies.map((b) => (Array.isArray(b) ? b.length : 1))).toEqual([5, 5]);
    await rpc.close();
  });

  it("a lone call goes as a plain request", async () => {
    const rpc = new JsonRpcBatcher(url);
    bodies.length = 0;
    await expect(rpc.request("echo", '["0xabc"]')).resolves.toBe("0xabc");
    expect(Array.isArray(bodies[0])).toBe(false);
    await rpc.close();
  });

  it("a node's error rejects only its call, marked as answered, with its data", async () => {
    const rpc = new JsonRpcBatcher(url);
    const [ok, failed] = await Promise.allSettled([
      rpc.request("echo", '["0x1"]'),
      rpc.request("fail", "[]"),
    ]);
    expect(ok).toEqual({ status: "fulfilled", value: "0x1" });
    expect(failed.status).toBe("rejected");
    const error = (failed as PromiseRejectedResult).reason as JsonRpcError;
    expect(error).toBeInstanceOf(JsonRpcError);
    expect(error).toMatchObject({ fromNode: true, code: 3, data: "0x08c379a0" });
    await rpc.close();
  });

  it("a refused batch or an unreachable node rejects every call as unanswered", async () => {
    const rpc = new JsonRpcBatcher(url, { maxInFlight: 1 });
    refuseBatches = true;
    try {
      const settled = await Promise.allSettled([
        rpc.request("echo", '["0x1"]'),
        rpc.request("echo", '["0x2"]'),
      ]);
      for (const s of settled) {
        expect(s.status).toBe("rejected");
        expect((s as PromiseRejectedResult).reason).toMatchObject({ fromNode: false });
      }
    } finally {
      refuseBatches = false;
      await rpc.close();
    }
    const dead = new JsonRpcBatcher("http://127.0.0.1:9/", { timeoutMs: 2_000 });
    await expect(dead.request("echo", '["0x1"]')).rejects.not.toMatchObject({ fromNode: true });
    await dead.close();
  });
});
