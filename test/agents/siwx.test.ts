import { once } from "node:events";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { HTTPFacilitatorClient, x402ResourceServer } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware } from "@x402/express";
import {
  createSIWxResourceServerExtension,
  declareSIWxExtension,
  encodeSIWxHeader,
  InMemorySIWxStorage,
  parseSIWxHeader,
} from "@x402/extensions/sign-in-with-x";
import express from "express";
import { type Abi, type Address, createWalletClient, type Hex, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { type AgentResult, createAgent } from "../../src/agents/index.ts";
import { BASE_NETWORK } from "../../src/chain/index.ts";
import { settlementsBetween } from "../../src/scenario/index.ts";
import { SIWX_CHALLENGE_HEADER } from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { type CountingServer, type PaymentStack, startPaymentStack, startStub } from "./harness.ts";

const PRICE = 1000n;
const PATHS = ["/weather", "/news", "/quotes"] as const;

let stack: PaymentStack;
let server: CountingServer;

beforeAll(async () => {
  stack = await startPaymentStack();
  server = await stack.serve({
    routes: Object.fromEntries(
      PATHS.map((path) => [`GET ${path}`, { price: PRICE, payTo: stack.payee.address, sessions: true }]),
    ),
  });
});
afterAll(async () => {
  await stack?.stop();
});

const account = (index: number) => devnetAccount(stack.devnet, index);

const count = (results: readonly AgentResult[], outcome: AgentResult["outcome"]) =>
  results.filter((r) => r.outcome === outcome).length;

describe("agent sessions", () => {
  it("pays once per resource on chain, then signs in with one round trip per request", async () => {
    const payer = account(0);
    const agent = createAgent({ privateKey: payer.privateKey });
    const [payerBefore = 0n, payeeBefore = 0n] = await stack.usdc([payer.address, stack.payee.address]);
    const startBlock = await stack.devnet.client.getBlockNumber({ cacheTime: 0 });
    const seen = { ...server.seen };

    const results: AgentResult[] = [];
    for (let round = 0; round < 20; round++) {
      for (const path of PATHS) results.push(await agent.request(`${server.url}${path}`));
    }

    expect(results.slice(0, 3).map((r) => r.outcome)).toEqual(["paid", "paid", "paid"]);
    expect(count(results, "session")).toBe(57);
    for (const result of results.slice(3)) {
      expect(result).toMatchObject({ status: 200, outcome: "session", body: { paid: true } });
      expect(result.errorCode).toBeUndefined();
      expect(result.amount).toBeUndefined();
      expect(result.timings.sign).toBeGreaterThan(0);
      expect(result.timings.e2e).toBeGreaterThanOrEqual(result.timings.sign ?? 0);
      expect(result.timings).not.toHaveProperty("paid");
      expect(result.timings).not.toHaveProperty("challenge");
    }
    // 402 + payment for each resource, then one request per session.
    expect(server.seen.requests - seen.requests).toBe(3 * 2 + 57);
    expect(server.seen.paid - seen.paid).toBe(3);

    const endBlock = await stack.devnet.client.getBlockNumber({ cacheTime: 0 });
    const settlements = await settlementsBetween(stack.devnet.client, startBlock + 1n, endBlock);
    expect(
      settlements.filter((s) => s.authorizer.toLowerCase() === payer.address.toLowerCase()),
    ).toHaveLength(3);
    expect(await stack.usdc([payer.address, stack.payee.address])).toEqual([
      payerBefore - 3n * PRICE,
      payeeBefore + 3n * PRICE,
    ]);
    expect(agent.spent).toBe(3n * PRICE);
    expect(agent.payments.map((p) => new URL(p.url).pathname)).toEqual([...PATHS]);
  });

  it("with sessions off, pays for every request", async () => {
    const agent = createAgent({ privateKey: account(1).privateKey, sessions: false });
    const results = [
      await agent.request(`${server.url}/weather`),
      await agent.request(`${server.url}/weather`),
    ];
    expect(results.map((r) => r.outcome)).toEqual(["paid", "paid"]);
    expect(agent.spent).toBe(2n * PRICE);
  });

  it("signs in through fetch() too, and with a viem account's signMessage", async () => {
    const agent = createAgent({ account: privateKeyToAccount(account(2).privateKey) });
    expect((await agent.fetch(`${server.url}/news`)).headers.get("payment-response")).not.toBeNull();
    const again = await agent.fetch(`${server.url}/news`);
    expect(again.status).toBe(200);
    expect(again.headers.get("payment-response")).toBeNull();
    expect(again.headers.get(SIWX_CHALLENGE_HEADER)).not.toBeNull();
    expect(agent.payments).toHaveLength(1);
  });

  it("answers a refused proof with the refusal's fresh challenge, without paying again", async () => {
    // Between agent and server, a proxy that spoils every challenge the server hands out with a response:
    // each proof signed from one is refused (`invalid_siwx_nonce`) and must be signed again from the 402.
    let target = "";
    const proofs: string[] = [];
    const proxy = await startStub(async (request, response) => {
      const headers: Record<string, string> = {};
      for (const name of ["sign-in-with-x", "payment-signature"]) {
        const value = request.headers[name];
        if (typeof value === "string") headers[name] = value;
      }
      if (headers["sign-in-with-x"]) proofs.push(headers["sign-in-with-x"]);
      const upstream = await fetch(`${target}${request.url}`, { headers });
      const out: Record<string, string> = {};
      upstream.headers.forEach((value, name) => {
        if (name === SIWX_CHALLENGE_HEADER) {
          const challenge = JSON.parse(Buffer.from(value, "base64").toString("utf8"));
          challenge.info.nonce = "0".repeat(32);
          out[name] = Buffer.from(JSON.stringify(challenge)).toString("base64");
        } else if (name !== "content-length" && name !== "connection" && name !== "keep-alive") {
          out[name] = value;
        }
      });
      response.writeHead(upstream.status, out);
      response.end(Buffer.from(await upstream.arrayBuffer()));
    });
    onTestFinished(() => proxy.stop());
    const behind = await stack.serve({
      routes: { "GET /weather": { price: PRICE, payTo: stack.payee.address, sessions: true } },
      // The proxy is the origin clients see, so the proofs must name it.
      sessions: { origin: proxy.url },
    });
    target = behind.url;

    const agent = createAgent({ privateKey: account(3).privateKey });
    const results: AgentResult[] = [];
    for (let i = 0; i < 4; i++) results.push(await agent.request(`${proxy.url}/weather`));
    expect(results.map((r) => [r.status, r.outcome, r.errorCode])).toEqual([
      [200, "paid", undefined],
      [200, "session", undefined],
      [200, "session", undefined],
      [200, "session", undefined],
    ]);
    // 402 + payment, then per session: the spoiled proof, its refusal's challenge signed and sent.
    expect(proxy.seen).toEqual({ requests: 2 + 3 * 2, paid: 1 });
    expect(agent.spent).toBe(PRICE);
    // The agent's headers are the bytes the official encoder gives for the same payload.
    expect(proofs).toHaveLength(6);
    for (const proof of proofs) expect(encodeSIWxHeader(parseSIWxHeader(proof))).toBe(proof);
  });

  it("against the official server (no nonce tracking), asks for one challenge and reuses its proof", async () => {
    const storage = new InMemorySIWxStorage();
    const app = express();
    let requests = 0;
    app.use((_request, _response, next) => {
      requests += 1;
      next();
    });
    const listener = app.listen(0, "127.0.0.1");
    await once(listener, "listening");
    onTestFinished(async () => {
      listener.closeAllConnections();
      listener.close();
      await once(listener, "close");
    });
    const url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
    const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: stack.facilitator.url }))
      .register(BASE_NETWORK, new ExactEvmScheme())
      .registerExtension(createSIWxResourceServerExtension({ storage, origin: url }));
    app.use(
      paymentMiddleware(
        {
          "GET /weather": {
            accepts: { scheme: "exact", network: BASE_NETWORK, payTo: stack.payee.address, price: "$0.001" },
            extensions: declareSIWxExtension(),
          },
        },
        resourceServer,
      ),
    );
    app.get("/weather", (_request, response) => {
      response.json({ sunny: true });
    });

    const agent = createAgent({ privateKey: account(4).privateKey });
    const results: AgentResult[] = [];
    for (let i = 0; i < 5; i++) results.push(await agent.request(`${url}/weather`));
    expect(results.map((r) => [r.status, r.outcome])).toEqual([
      [200, "paid"],
      [200, "session"],
      [200, "session"],
      [200, "session"],
      [200, "session"],
    ]);
    // Paid: 402 + payment. First session: 402 + proof. Then the same proof, one request each.
    expect(requests).toBe(2 + 2 + 3);
    expect(results[1]?.timings.challenge).toBeGreaterThan(0);
    expect(agent.spent).toBe(PRICE);
  });
});

describe("smart-account agents", () => {
  /** The forge-built ERC-1271 wallet of contracts/test/utils/Wallets.sol: valid when its owner signed. */
  async function deployOwnedWallet(owner: Address, deployerKey: Hex): Promise<Address> {
    const artifact = JSON.parse(
      await readFile(new URL("../../contracts/out/Wallets.sol/OwnedWallet.json", import.meta.url), "utf8"),
    ) as { abi: Abi; bytecode: { object: Hex } };
    const deployer = createWalletClient({
      account: privateKeyToAccount(deployerKey),
      chain: stack.devnet.client.chain,
      transport: http(stack.devnet.rpcUrl),
    });
    const hash = await deployer.deployContract({
      abi: artifact.abi,
      bytecode: artifact.bytecode.object,
      args: [owner],
    });
    const { contractAddress } = await stack.devnet.client.waitForTransactionReceipt({ hash });
    if (!contractAddress) throw new Error("OwnedWallet was not deployed");
    return contractAddress;
  }

  it("a contract wallet pays through ERC-1271 and signs in when the server verifies contract proofs", async () => {
    const owner = privateKeyToAccount(account(6).privateKey);
    const wallet = await deployOwnedWallet(owner.address, account(7).privateKey);
    await stack.devnet.fund([wallet]);
    // The owner's key signs; the contract's address pays and signs in.
    const agent = createAgent({ account: { ...owner, address: wallet } });
    const verifying = await stack.serve({
      routes: { "GET /weather": { price: PRICE, payTo: stack.payee.address, sessions: true } },
      sessions: { verifyMessage: (args) => stack.devnet.client.verifyMessage(args) },
    });
    const eoaOnly = await stack.serve({
      routes: { "GET /weather": { price: PRICE, payTo: stack.payee.address, sessions: true } },
    });
    const [before = 0n] = await stack.usdc([wallet]);

    const results: AgentResult[] = [];
    for (let i = 0; i < 3; i++) results.push(await agent.request(`${verifying.url}/weather`));
    expect(results.map((r) => `${r.status} ${r.outcome}`)).toEqual([
      "200 paid",
      "200 session",
      "200 session",
    ]);
    expect(await stack.usdc([wallet])).toEqual([before - PRICE]);

    // Without a contract verifier the proof is refused as the official server refuses it, and nothing is
    // served on its strength: the agent pays this other server again.
    const elsewhere = [
      await agent.request(`${eoaOnly.url}/weather`),
      await agent.request(`${eoaOnly.url}/weather`),
    ];
    expect(elsewhere.map((r) => r.outcome)).not.toContain("session");
    expect(await stack.usdc([wallet])).toEqual([before - PRICE * BigInt(1 + elsewhere.length)]);
  });
});
