import { erc20Abi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createDevnetClient, type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type FaultProxy, startFaultProxy } from "../../src/faults/index.ts";
import { faultEvents, newAgent, send } from "./harness.ts";

let devnet: Devnet;
const agent = newAgent();
beforeAll(async () => {
  devnet = await startDevnet({ accounts: 2 });
});
afterAll(async () => {
  await agent.close();
  await devnet?.stop();
});

const call = (id: number, method: string, params: unknown[] = []) => ({ jsonrpc: "2.0", id, method, params });

describe("fault proxy in front of anvil", () => {
  let proxy: FaultProxy;
  const events = faultEvents();
  beforeEach(async () => {
    proxy = await startFaultProxy({ target: devnet.rpcUrl, onFault: events.onFault });
  });
  afterEach(() => proxy.stop());

  const post = async (body: unknown) => {
    const answer = await send(proxy.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      dispatcher: agent,
    });
    return { status: answer.status, json: answer.text ? JSON.parse(answer.text) : undefined };
  };

  it("answers rpcError per call, in the request's id, and forwards other methods", async () => {
    await proxy.setFaults({
      faults: [
        { kind: "rpcError", message: "nonce too low", match: { rpcMethod: "eth_sendRawTransaction*" } },
      ],
    });
    expect(await post(call(7, "eth_sendRawTransaction", ["0x00"]))).toEqual({
      status: 200,
      json: { jsonrpc: "2.0", id: 7, error: { code: -32000, message: "nonce too low" } },
    });
    expect(await post(call(8, "eth_sendRawTransactionSync", ["0x00"]))).toMatchObject({
      json: { id: 8, error: { code: -32000 } },
    });
    expect(await post(call(9, "eth_chainId"))).toEqual({
      status: 200,
      json: { jsonrpc: "2.0", id: 9, result: "0x2105" },
    });
    expect(proxy.stats()).toMatchObject({ seen: 3, forwarded: 1, faulted: { rpcError: 2 } });
  });

  it("faults a whole batch when any call in it matches, and forwards batches that do not match", async () => {
    await proxy.setFaults({
      faults: [{ kind: "rpcError", code: -32005, match: { rpcMethod: ["eth_call"] } }],
    });
    const batch = [call(1, "eth_chainId"), call(2, "eth_call", [{ to: USDC_ADDRESS, data: "0x" }, "latest"])];
    const faulted = events.next();
    expect(await post(batch)).toEqual({
      status: 200,
      json: [
        { jsonrpc: "2.0", id: 1, error: { code: -32005, message: "fault injected: rpcError" } },
        { jsonrpc: "2.0", id: 2, error: { code: -32005, message: "fault injected: rpcError" } },
      ],
    });
    expect(await faulted).toMatchObject({ kind: "rpcError", rpcMethods: ["eth_chainId", "eth_call"] });

    const clean = await post([call(3, "eth_chainId"), call(4, "eth_blockNumber")]);
    expect(clean.json).toMatchObject([
      { id: 3, result: "0x2105" },
      { id: 4, result: expect.stringMatching(/^0x[0-9a-f]+$/) },
    ]);

    await proxy.setFaults({ faults: [{ kind: "status", status: 503, match: { rpcMethod: "eth_call" } }] });
    expect((await post(batch)).status).toBe(503);
    expect((await post([call(5, "eth_chainId")])).status).toBe(200);
  });

  it("delays only the JSON-RPC method it targets, for a viem client going through the proxy", async () => {
    await proxy.setFaults({ faults: [{ kind: "latency", ms: 120, match: { rpcMethod: "eth_call" } }] });
    const client = createDevnetClient(proxy.url, devnet.chainId);
    const [holder] = devnet.accounts;
    if (!holder) throw new Error("accounts");
    expect(await client.getChainId()).toBe(devnet.chainId);
    expect(proxy.stats().faulted.latency).toBe(0);
    const started = performance.now();
    const balance = await client.readContract({
      address: USDC_ADDRESS,
      abi: erc20Abi,
      functionName: "balanceOf",
      args: [holder.address],
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(120);
    expect(balance).toBeGreaterThan(0n);
    expect(proxy.stats().faulted.latency).toBe(1);
  });

  it("afterForward 503 on eth_sendRawTransaction: the client sees an error, the transaction is mined anyway", async () => {
    await proxy.setFaults({
      faults: [
        { kind: "status", status: 503, afterForward: true, match: { rpcMethod: "eth_sendRawTransaction" } },
      ],
    });
    const [sender, recipient] = devnet.accounts;
    if (!sender || !recipient) throw new Error("accounts");
    const proxied = createDevnetClient(proxy.url, devnet.chainId);
    const before = await devnet.client.getBalance({ address: recipient.address });
    const nonce = await devnet.client.getTransactionCount({ address: sender.address });

    await expect(
      proxied.sendTransaction({
        account: privateKeyToAccount(sender.privateKey),
        to: recipient.address,
        value: 777n,
      }),
    ).rejects.toThrow(/503/);
    expect(await devnet.client.getBalance({ address: recipient.address })).toBe(before + 777n);
    expect(await devnet.client.getTransactionCount({ address: sender.address })).toBe(nonce + 1);
    expect(proxy.stats()).toMatchObject({ afterForward: 1, faulted: { status: 1 } });
  });
});
