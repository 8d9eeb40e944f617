import { HTTPFacilitatorClient, x402ResourceServer } from "@x402/core/server";
import { getDefaultAsset } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware } from "@x402/express";
import express from "express";
import getPort from "get-port";
import { erc20Abi, getAddress, hashDomain } from "viem";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import {
  anvilInstance,
  type Devnet,
  DevnetOptionError,
  ForkMissingUsdcError,
  MULTICALL3_ADDRESS,
  mockUsdcAbi,
  NETWORK_NAMES,
  NETWORKS,
  networkOfChainId,
  PERMIT2_ADDRESS,
  startDevnet,
  USDC_ADDRESS,
  usdcOf,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
} from "../../src/chain/index.ts";
import { networkFromV1, v1NetworkName } from "../../src/protocol/index.ts";
import { type RunReport, runScenario } from "../../src/scenario/index.ts";
import { startStack } from "../../src/stack.ts";
import { listen } from "../support/official-server.ts";
import { smallScenario } from "../support/scenario.ts";

const SEPOLIA = NETWORKS["base-sepolia"];

describe("the network profiles", () => {
  it.each(NETWORK_NAMES)("%s: USDC as @x402/evm's default asset, and the v1 name x402 uses", (name) => {
    const profile = NETWORKS[name];
    const official = getDefaultAsset(profile.network);
    expect(usdcOf(name)).toEqual({
      address: getAddress(official.asset),
      name: official.name,
      version: official.version,
      decimals: official.decimals,
    });
    expect(profile.network).toBe(`eip155:${profile.chainId}`);
    expect(v1NetworkName(profile.network)).toBe(profile.v1Name);
    expect(networkFromV1(profile.v1Name)).toBe(profile.network);
    expect(networkOfChainId(profile.chainId)).toBe(name);
  });

  it("knows no network for another chain id", () => {
    expect(networkOfChainId(31337)).toBeUndefined();
  });
});

describe("a Base Sepolia devnet", () => {
  let devnet: Devnet;
  beforeAll(async () => {
    devnet = await startDevnet({ network: "base-sepolia", accounts: 2 });
  });
  afterAll(async () => {
    await devnet?.stop();
  });

  it("answers as chain 84532", async () => {
    expect(devnet.chainId).toBe(84532);
    expect(devnet.network).toBe("base-sepolia");
    expect(await devnet.client.getChainId()).toBe(84532);
  });

  it("carries Base Sepolia's USDC at its address, under its EIP-712 name and version", async () => {
    const address = SEPOLIA.usdc.address;
    expect(devnet.contracts.usdc).toBe(address);
    expect(devnet.usdc).toEqual(SEPOLIA.usdc);
    const read = <F extends "name" | "version" | "symbol" | "DOMAIN_SEPARATOR">(functionName: F) =>
      devnet.client.readContract({ address, abi: mockUsdcAbi, functionName });
    expect(await read("name")).toBe("USDC");
    expect(await read("version")).toBe("2");
    expect(await read("symbol")).toBe("USDC");
    // What a client signs for Base Sepolia's USDC is what the token checks.
    expect(await read("DOMAIN_SEPARATOR")).toBe(
      hashDomain({
        domain: { name: "USDC", version: "2", chainId: 84532n, verifyingContract: address },
        types: {
          EIP712Domain: [
            { name: "name", type: "string" },
            { name: "version", type: "string" },
            { name: "chainId", type: "uint256" },
            { name: "verifyingContract", type: "address" },
          ],
        },
      }),
    );
    // The rename is once only, like FiatToken v2's.
    await expect(
      devnet.client.simulateContract({
        address,
        abi: mockUsdcAbi,
        functionName: "initializeV2",
        args: ["USD Coin"],
      }),
    ).rejects.toThrow(/already initialized/);
  });

  it("funds the wallets in that USDC, and places nothing at Base's USDC address", async () => {
    const balances = await Promise.all(
      devnet.accounts.map((a) =>
        devnet.client.readContract({
          address: SEPOLIA.usdc.address,
          abi: erc20Abi,
          functionName: "balanceOf",
          args: [a.address],
        }),
      ),
    );
    expect(balances).toEqual([10_000_000_000n, 10_000_000_000n]);
    expect(await devnet.client.getCode({ address: USDC_ADDRESS })).toBeUndefined();
  });

  it("has the periphery at the addresses it has on every chain", async () => {
    for (const address of [
      MULTICALL3_ADDRESS,
      PERMIT2_ADDRESS,
      X402_EXACT_PERMIT2_PROXY_ADDRESS,
      X402_UPTO_PERMIT2_PROXY_ADDRESS,
    ]) {
      expect(await devnet.client.getCode({ address }), address).toMatch(/^0x[0-9a-f]{2,}/);
    }
  });

  it("forks as Base Sepolia: the network comes from the forked chain, and a named one must be it", async () => {
    const fork = await startDevnet({ forkUrl: devnet.rpcUrl, accounts: 1 });
    onTestFinished(() => fork.stop());
    expect(fork).toMatchObject({ mode: "fork", chainId: 84532, network: "base-sepolia", usdc: SEPOLIA.usdc });
    expect(
      await fork.client.readContract({
        address: SEPOLIA.usdc.address,
        abi: erc20Abi,
        functionName: "balanceOf",
        args: [fork.accounts[0]?.address ?? "0x"],
      }),
    ).toBe(2n * 10_000_000_000n); // the upstream's funding of the same wallet, and the fork's own

    const named = await startDevnet({ network: "base-sepolia", forkUrl: devnet.rpcUrl, accounts: 0 });
    onTestFinished(() => named.stop());
    expect(named.network).toBe("base-sepolia");

    await expect(startDevnet({ network: "base", forkUrl: devnet.rpcUrl, accounts: 0 })).rejects.toThrow(
      new DevnetOptionError(
        "network base is chain 8453, but the fork URL serves chain 84532: fork a Base RPC, or name the network it is (base-sepolia)",
      ),
    );
  });
});

describe("forking Base Sepolia without its USDC", () => {
  it("is refused, naming Base Sepolia's USDC address", async () => {
    const upstream = anvilInstance({ port: await getPort(), chainId: 84532 });
    await upstream.start();
    onTestFinished(() => upstream.stop());
    const attempt = startDevnet({ network: "base-sepolia", forkUrl: `http://127.0.0.1:${upstream.port}` });
    await expect(attempt).rejects.toBeInstanceOf(ForkMissingUsdcError);
    await expect(attempt).rejects.toThrow(
      `The chain has no contract at Base Sepolia's USDC address ${SEPOLIA.usdc.address}.`,
    );
  });

  it("an unknown network name is refused before anything starts", async () => {
    await expect(startDevnet({ network: "base-goerli" as never })).rejects.toThrow(
      new DevnetOptionError("network must be one of base, base-sepolia, got base-goerli"),
    );
  });
});

describe("a run on Base Sepolia", () => {
  const small = smallScenario(3, 1_500);
  const held = (report: RunReport) => report.invariants.filter((i) => !i.ok);

  it("pays our server in Base Sepolia's USDC, and the money invariants hold", async () => {
    const report = await runScenario(small, { progress: false, devnet: { network: "base-sepolia" } });
    expect(held(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.outcomes.paid).toBeGreaterThan(3);
    expect(report.chain.settlements).toBe(report.outcomes.paid);
    expect(report.config.devnet).toMatchObject({
      network: "base-sepolia",
      chainId: 84532,
      usdc: SEPOLIA.usdc.address,
    });
  });

  it("pays an official @x402/express server configured for eip155:84532, unchanged", async () => {
    const stack = await startStack({ devnet: { network: "base-sepolia", accounts: 1 } });
    onTestFinished(() => stack.stop());
    const payTo = stack.payees[0]?.address ?? "0x";
    // As its README has it: a network and a dollar price, which @x402/evm turns into Base Sepolia's USDC.
    const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: stack.facilitatorUrl })).register(
      "eip155:84532",
      new ExactEvmScheme(),
    );
    const app = express();
    app.use(
      paymentMiddleware(
        { "GET /weather": { accepts: { scheme: "exact", network: "eip155:84532", payTo, price: "$0.001" } } },
        server,
      ),
    );
    app.get("/weather", (_request, response) => {
      response.json({ sunny: true });
    });
    const listener = await listen(app);
    onTestFinished(listener.stop);

    const report = await runScenario(small, {
      progress: false,
      serverUrl: `${listener.url}/weather`,
      rpcUrl: stack.devnet.rpcUrl,
    });
    expect(held(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.outcomes.paid).toBeGreaterThan(3);
    expect(report.chain.settlements).toBe(report.outcomes.paid);
    expect(report.config.routes).toEqual([
      expect.objectContaining({ network: "eip155:84532", amount: "1000", payTo }),
    ]);
  });
});
