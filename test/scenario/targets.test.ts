import Fastify from "fastify";
import { getAddress } from "viem";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { createAgent } from "../../src/agents/index.ts";
import {
  DEFAULT_FUNDING,
  DEFAULT_MNEMONIC,
  deriveAccounts,
  HD_RANGES,
  PRUNED_STATES,
  RpcUnreachableError,
  startDevnet,
  UnusableChainError,
} from "../../src/chain/index.ts";
import {
  defineScenario,
  loadScenario,
  type RunReport,
  runScenario,
  settlementsBetween,
  TargetError,
  usdcBalances,
} from "../../src/scenario/index.ts";
import { startResourceServer } from "../../src/server/index.ts";
import { type Stack, startStack } from "../../src/stack.ts";
import { startOfficialServer } from "../support/official-server.ts";
import { scenarioCli, smallScenario } from "../support/scenario.ts";
import { startUnsettlingServer } from "../support/unsettling-server.ts";

const small = smallScenario(3, 1_000);

/** The user's deployment: `x402-devnet up`'s stack, already running before any run attaches to it. */
let users: Stack;

beforeAll(async () => {
  users = await startStack({ devnet: { accounts: 2 } });
});
afterAll(async () => {
  await users?.stop();
});

const held = (report: RunReport) => report.invariants.every((i) => i.ok);

const relayersOf = (stack: Stack) => stack.relayers.map((r) => r.address.toLowerCase()).sort();

/** Who sent the transactions that settled the run's payments (its agents' authorizations). */
async function settlementSenders(report: RunReport): Promise<string[]> {
  const { client } = users.devnet;
  const agents = new Set(
    deriveAccounts(DEFAULT_MNEMONIC, report.config.agents as number, HD_RANGES.attached.agents).map((a) =>
      a.address.toLowerCase(),
    ),
  );
  const all = await settlementsBetween(
    client,
    BigInt(report.chain.startBlock + 1),
    BigInt(report.chain.endBlock),
  );
  const settled = all.filter((s) => agents.has(s.authorizer.toLowerCase()));
  const hashes = [...new Set(settled.map((s) => s.transaction))];
  const senders = await Promise.all(hashes.map(async (hash) => (await client.getTransaction({ hash })).from));
  return [...new Set(senders.map((a) => a.toLowerCase()))].sort();
}

describe("a run against the user's own parts", () => {
  it("--server-url with a route: loads that URL, funds its agents on --rpc-url's chain, and leaves the chain running", async () => {
    const report = await runScenario(small, {
      progress: false,
      serverUrl: `${users.server.url}/weather`,
      rpcUrl: users.devnet.rpcUrl,
    });
    expect(report.outcomes.paid).toBeGreaterThan(3);
    expect(report.chain.settlements).toBe(report.outcomes.paid);
    expect(held(report)).toBe(true);
    expect(report.ok).toBe(true);
    expect(report.config).toMatchObject({
      serverUrl: `${users.server.url}/weather`,
      devnet: { mode: "attached", rpcUrl: users.devnet.rpcUrl },
      routes: [{ amount: "1000", payTo: users.payees[0]?.address }],
    });
    // Its agents are wallets of their own, not the ones `up` printed for the user.
    const [agent] = deriveAccounts(DEFAULT_MNEMONIC, 1, HD_RANGES.attached.agents);
    const [printed] = users.devnet.accounts;
    expect(
      await usdcBalances(users.devnet.client, [agent?.address ?? "0x", printed?.address ?? "0x"]),
    ).toEqual(
      new Map([
        [agent?.address.toLowerCase(), expect.any(BigInt)],
        [printed?.address.toLowerCase(), DEFAULT_FUNDING.usdc],
      ]),
    );
    // The attached chain is not stopped with the run; the user's server still takes payments on it.
    expect(await users.devnet.client.getBlockNumber({ cacheTime: 0 })).toBeGreaterThanOrEqual(
      BigInt(report.chain.endBlock),
    );
  });

  it("--server-url with an origin: an official @x402/express server, its payee learnt from its 402", async () => {
    const payTo = "0x00000000000000000000000000000000000b0b01";
    const server = await startOfficialServer(users.facilitatorUrl, payTo);
    onTestFinished(() => server.stop());
    const report = await runScenario(small, {
      progress: false,
      serverUrl: server.url,
      rpcUrl: users.devnet.rpcUrl,
      facilitatorUrl: users.facilitatorUrl,
    });
    expect(report.outcomes.paid).toBeGreaterThan(3);
    expect(held(report)).toBe(true);
    const money = report.invariants.find((i) => i.name === "money in equals money out");
    const moved = (report.outcomes.paid ?? 0) * 1000;
    expect(money?.detail).toBe(
      `payers lost ${moved}, payees gained ${moved}, paid responses claim ${moved} (USDC base units)`,
    );
  });

  it("a payee the probe did not see is learnt from the paid responses and read as of the run's start", async () => {
    const [first, second] = [
      "0x00000000000000000000000000000000000b0b02",
      "0x00000000000000000000000000000000000b0b03",
    ] as const;
    const server = await startResourceServer({
      facilitatorUrl: users.facilitatorUrl,
      routes: { "GET /a": { price: 1_000n, payTo: first }, "GET /b": { price: 2_000n, payTo: second } },
    });
    onTestFinished(() => server.stop());
    const twoRoutes = defineScenario({
      ...small,
      target: ({ iteration }) => (iteration % 2 === 0 ? "/a" : "/b"),
    });
    const report = await runScenario(twoRoutes, {
      progress: false,
      serverUrl: server.url,
      rpcUrl: users.devnet.rpcUrl,
    });
    expect(report.config.routes).toEqual([expect.objectContaining({ payTo: getAddress(first) })]);
    const payees = report.invariants.find((i) => i.name.startsWith("each payee received"));
    expect(payees).toMatchObject({ ok: true, detail: "2 payees balanced" });
    expect(held(report)).toBe(true);
  });

  it("a payee learnt on a pruned chain, after it dropped the run's first state, is balanced from its Transfer logs", async () => {
    const pruned = await startStack({ devnet: { accounts: 2, history: "pruned" } });
    onTestFinished(() => pruned.stop());
    const [first, second] = [
      "0x00000000000000000000000000000000000b0b04",
      "0x00000000000000000000000000000000000b0b05",
    ] as const;
    const server = await startResourceServer({
      facilitatorUrl: pruned.facilitatorUrl,
      routes: { "GET /a": { price: 1_000n, payTo: first }, "GET /b": { price: 2_000n, payTo: second } },
    });
    onTestFinished(() => server.stop());
    const report = await runScenario(
      defineScenario({ ...small, target: ({ iteration }) => (iteration % 2 === 0 ? "/a" : "/b") }),
      { progress: false, serverUrl: server.url, rpcUrl: pruned.devnet.rpcUrl },
    );
    // The run's first block is beyond what the chain still holds the state of.
    expect(report.chain.endBlock - report.chain.startBlock).toBeGreaterThan(PRUNED_STATES);
    await expect(
      usdcBalances(pruned.devnet.client, [second], BigInt(report.chain.startBlock)),
    ).rejects.toThrow();
    expect(report.error).toBeUndefined();
    const payees = report.invariants.find((i) => i.name.startsWith("each payee received"));
    expect(payees).toMatchObject({ ok: true, detail: "2 payees balanced" });
    expect(held(report)).toBe(true);
  });

  it("--facilitator-url: our server verifies and settles through the user's facilitator", async () => {
    const report = await runScenario(small, {
      progress: false,
      facilitatorUrl: users.facilitatorUrl,
      rpcUrl: users.devnet.rpcUrl,
    });
    expect(report.outcomes.paid).toBeGreaterThan(3);
    expect(held(report)).toBe(true);
    expect(report.config.facilitatorUrl).toBe(users.facilitatorUrl);
    const senders = await settlementSenders(report);
    expect(senders.length).toBeGreaterThan(0);
    expect(senders.filter((s) => !relayersOf(users).includes(s))).toEqual([]);
  });

  it("--rpc-url alone: our facilitator and server on the user's chain, its relayers apart from the user's", async () => {
    // The user's own wallet keeps paying the user's server meanwhile: another facilitator's settlements
    // on the same chain, which must neither race our relayers' nonces nor count as ours.
    const stop = new AbortController();
    const own = createAgent({ privateKey: users.devnet.accounts[0]?.privateKey ?? "0x" });
    const theirs = (async () => {
      let paid = 0;
      while (!stop.signal.aborted) {
        if ((await own.request(`${users.server.url}/weather`)).outcome === "paid") paid += 1;
      }
      return paid;
    })();
    const report = await runScenario(small, { progress: false, rpcUrl: users.devnet.rpcUrl });
    stop.abort();
    expect(await theirs).toBeGreaterThan(3);
    expect(report.outcomes.paid).toBeGreaterThan(3);
    expect(report.errors).toEqual({});
    expect(report.chain.settlements).toBe(report.outcomes.paid);
    expect(held(report)).toBe(true);
    const senders = await settlementSenders(report);
    expect(senders.filter((s) => relayersOf(users).includes(s))).toEqual([]);
  });
});

describe("the invariants catch a server that serves without settling", () => {
  it("a 200 naming a transaction that never settled fails the run", async () => {
    const url = await startUnsettlingServer(users.server.url);

    const report = await runScenario(small, { progress: false, serverUrl: url, rpcUrl: users.devnet.rpcUrl });
    expect(report.outcomes.paid).toBeGreaterThan(0);
    expect(report.chain.settlements).toBe(0);
    const failed = report.invariants.filter((i) => !i.ok).map((i) => i.name);
    expect(failed).toEqual(
      expect.arrayContaining([
        "money in equals money out",
        "every paid response matches exactly one settlement",
      ]),
    );
    expect(report.ok).toBe(false);
  });
});

describe("what cannot work is refused before anything runs", () => {
  it.each([
    ["a route that is not paid", { serverUrl: "/nothing-here" }, /answered 404, not 402 Payment Required/],
    [
      "a fork with a server",
      { serverUrl: "/weather", forkUrl: "http://127.0.0.1:1" },
      /--fork-url starts a new chain/,
    ],
    ["a non-URL", { serverUrl: "::nope" }, /--server-url "::nope" is not a URL/],
  ])("%s", async (_name, options, message) => {
    const serverUrl = options.serverUrl.startsWith("/")
      ? `${users.server.url}${options.serverUrl}`
      : options.serverUrl;
    await expect(
      runScenario(small, { progress: false, ...options, serverUrl, rpcUrl: users.devnet.rpcUrl }),
    ).rejects.toThrow(message);
  });

  it("a scenario of fault cases needs its own stack", async () => {
    const failures = await loadScenario("failures");
    await expect(
      runScenario(failures, { progress: false, rpcUrl: users.devnet.rpcUrl }),
    ).rejects.toBeInstanceOf(TargetError);
  });

  it("an --rpc-url that is no JSON-RPC, or no anvil with USDC", async () => {
    await expect(
      runScenario(small, { progress: false, rpcUrl: users.facilitatorUrl }),
    ).rejects.toBeInstanceOf(RpcUnreachableError);
    // A bare chain without Base's USDC cannot fund the agents.
    const bare = await startDevnet({ accounts: 0 });
    onTestFinished(() => bare.stop());
    await bare.client.setCode({ address: bare.contracts.usdc, bytecode: "0x" });
    await expect(runScenario(small, { progress: false, rpcUrl: bare.rpcUrl })).rejects.toThrow(
      /no contract at Base's USDC address/,
    );
  });

  it("a facilitator that does not settle on the chain", async () => {
    const app = Fastify();
    app.get("/supported", async () => ({
      kinds: [{ x402Version: 2, scheme: "exact", network: "eip155:1" }],
    }));
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    onTestFinished(() => app.close());
    await expect(
      runScenario(small, { progress: false, facilitatorUrl: url, rpcUrl: users.devnet.rpcUrl }),
    ).rejects.toThrow(/does not list the exact scheme on eip155:8453/);
  });

  it("an --rpc-url that is some other node, which the harness cannot fund wallets on", async () => {
    const app = Fastify();
    // viem batches its calls; a node answers a batch with an array.
    const answer = ({ id, method }: { id: number; method: string }) => ({
      jsonrpc: "2.0",
      id,
      result: method === "eth_chainId" ? "0x2105" : "Geth/v1.14.0",
    });
    app.post("/", async (request) => {
      const body = request.body as Parameters<typeof answer>[0] | Parameters<typeof answer>[0][];
      return Array.isArray(body) ? body.map(answer) : answer(body);
    });
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    onTestFinished(() => app.close());
    const attempt = runScenario(small, {
      progress: false,
      serverUrl: `${users.server.url}/weather`,
      rpcUrl: url,
    });
    await expect(attempt).rejects.toBeInstanceOf(UnusableChainError);
    await expect(attempt).rejects.toThrow(
      /"Geth\/v1.14.0": the harness funds its agents with anvil's methods/,
    );
  });
});

describe("npm run scenario against the user's server", () => {
  it("exits 0 on a paid run and 2 with a clear message on a bad combination", async () => {
    const ok = await scenarioCli([
      "--server-url",
      `${users.server.url}/weather`,
      "--rpc-url",
      users.devnet.rpcUrl,
      "--agents",
      "2",
      "--duration",
      "1s",
    ]);
    expect(ok.stdout).toMatch(/per-request: PASS/);
    expect(ok.stdout).toContain(`against server ${users.server.url}/weather`);
    expect(ok.code).toBe(0);
    const bad = await scenarioCli(["--server-url", users.server.url, "--fork-url", users.devnet.rpcUrl]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--fork-url starts a new chain/);
  });
});
