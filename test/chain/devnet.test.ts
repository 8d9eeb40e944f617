import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import { createTestClient, erc20Abi, http, parseSignature } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  anvilInstance,
  BASE_CHAIN_ID,
  ChainStalledError,
  DEFAULT_FUNDING,
  type Devnet,
  ForkMissingUsdcError,
  ForkUnreachableError,
  MOCK_USDC_ADMIN,
  MULTICALL3_ADDRESS,
  mockUsdcAbi,
  PortInUseError,
  startDevnet,
  USDC_ADDRESS,
} from "../../src/chain/index.ts";
import { transferWithAuthorizationTypes } from "../../src/protocol/index.ts";

/** Resolves when the port can be bound again, i.e. nothing (no leftover anvil) listens on it. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

const usdcBalances = (devnet: Devnet, addresses: readonly `0x${string}`[]) =>
  devnet.client.multicall({
    allowFailure: false,
    contracts: addresses.map(
      (address) =>
        ({ address: USDC_ADDRESS, abi: erc20Abi, functionName: "balanceOf", args: [address] }) as const,
    ),
  });

describe("startDevnet (mock USDC, instant profile)", () => {
  let devnet: Devnet;
  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 5 });
  });
  afterAll(() => devnet?.stop());

  it("looks like Base: chain 8453, USDC and Multicall3 at their canonical addresses", async () => {
    expect(await devnet.client.getChainId()).toBe(BASE_CHAIN_ID);
    const read = (functionName: "name" | "symbol" | "version" | "decimals" | "owner" | "masterMinter") =>
      devnet.client.readContract({ address: USDC_ADDRESS, abi: mockUsdcAbi, functionName });
    expect(await read("name")).toBe("USD Coin");
    expect(await read("symbol")).toBe("USDC");
    expect(await read("version")).toBe("2");
    expect(await read("decimals")).toBe(6);
    expect(await read("owner")).toBe(MOCK_USDC_ADMIN);
    expect(await read("masterMinter")).toBe(MOCK_USDC_ADMIN);
    expect(await devnet.client.getCode({ address: MULTICALL3_ADDRESS })).toMatch(/^0x[0-9a-f]{100,}$/);
  });

  it("derives anvil's familiar accounts and funds them with ETH and USDC", async () => {
    expect(devnet.accounts.map((a) => a.address).slice(0, 2)).toEqual([
      "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
      "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    ]);
    const addresses = devnet.accounts.map((a) => a.address);
    expect(await usdcBalances(devnet, addresses)).toEqual(addresses.map(() => DEFAULT_FUNDING.usdc));
    for (const address of addresses)
      expect(await devnet.client.getBalance({ address })).toBe(DEFAULT_FUNDING.eth);
    // The temporary minter used for batching is gone again.
    const isMinter = await devnet.client.readContract({
      address: USDC_ADDRESS,
      abi: mockUsdcAbi,
      functionName: "isMinter",
      args: [MULTICALL3_ADDRESS],
    });
    expect(isMinter).toBe(false);
  });

  it("settles an EIP-3009 authorization signed for real Base USDC's EIP-712 domain", async () => {
    const [payer, payee, relayer] = devnet.accounts;
    if (!payer || !payee || !relayer) throw new Error("accounts");
    const authorization = {
      from: payer.address,
      to: payee.address,
      value: 1_000n,
      validAfter: 0n,
      validBefore: BigInt(Math.floor(Date.now() / 1000) + 300),
      nonce: `0x${"ab".repeat(32)}` as const,
    };
    const signature = await privateKeyToAccount(payer.privateKey).signTypedData({
      domain: {
        name: "USD Coin",
        version: "2",
        chainId: 8453,
        verifyingContract: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
      },
      types: transferWithAuthorizationTypes,
      primaryType: "TransferWithAuthorization",
      message: authorization,
    });
    const { v, r, s } = parseSignature(signature);
    const hash = await devnet.client.writeContract({
      account: privateKeyToAccount(relayer.privateKey),
      address: USDC_ADDRESS,
      abi: mockUsdcAbi,
      functionName: "transferWithAuthorization",
      args: [
        authorization.from,
        authorization.to,
        authorization.value,
        authorization.validAfter,
        authorization.validBefore,
        authorization.nonce,
        Number(v),
        r,
        s,
      ],
    });
    expect((await devnet.client.waitForTransactionReceipt({ hash })).status).toBe("success");
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      DEFAULT_FUNDING.usdc - 1_000n,
      DEFAULT_FUNDING.usdc + 1_000n,
    ]);

    // reset() returns to the funded state right after setup, block height included.
    const height = await devnet.client.getBlockNumber({ cacheTime: 0 });
    await devnet.reset();
    expect(await devnet.client.getBlockNumber({ cacheTime: 0 })).toBeLessThan(height);
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      DEFAULT_FUNDING.usdc,
      DEFAULT_FUNDING.usdc,
    ]);
  });

  it("reports a stall when transactions wait and no block comes", async () => {
    await devnet.client.setAutomine(false);
    try {
      const stalled = new Promise<ChainStalledError>((resolve) => {
        const unwatch = devnet.watchForStall({
          windowMs: 300,
          onStall: (error) => {
            unwatch();
            resolve(error);
          },
        });
      });
      const [sender] = devnet.accounts;
      if (!sender) throw new Error("accounts");
      await devnet.client.sendTransaction({
        account: privateKeyToAccount(sender.privateKey),
        to: sender.address,
        value: 1n,
      });
      const error = await stalled;
      expect(error).toBeInstanceOf(ChainStalledError);
      expect(error.message).toMatch(/1 transactions pending/);
    } finally {
      await devnet.client.setAutomine(true);
      await devnet.reset();
    }
  });
});

describe("startDevnet options", () => {
  it("funds 1,000 wallets", async () => {
    const devnet = await startDevnet({ accounts: 1000, fund: { usdc: 5_000_000n } });
    try {
      const addresses = devnet.accounts.map((a) => a.address);
      expect(new Set(addresses).size).toBe(1000);
      const balances = await usdcBalances(devnet, addresses);
      expect(balances.every((b) => b === 5_000_000n)).toBe(true);
      expect(await devnet.client.getBalance({ address: addresses[999] as `0x${string}` })).toBe(
        DEFAULT_FUNDING.eth,
      );
    } finally {
      await devnet.stop();
    }
  });

  it("mines on an interval with a fractional block time", async () => {
    const devnet = await startDevnet({ blockTime: 0.2, accounts: 2 });
    try {
      expect(devnet.blockTime).toBe(0.2);
      const [first] = await usdcBalances(devnet, [devnet.accounts[0]?.address as `0x${string}`]);
      expect(first).toBe(DEFAULT_FUNDING.usdc);
      const start = await devnet.client.getBlockNumber({ cacheTime: 0 });
      // Blocks arrive without any transaction: wait for two of them.
      await new Promise<void>((resolve) => {
        const unwatch = devnet.client.watchBlockNumber({
          pollingInterval: 50,
          onBlockNumber: (n) => {
            if (n >= start + 2n) {
              unwatch();
              resolve();
            }
          },
        });
      });
    } finally {
      await devnet.stop();
    }
  });

  it("refuses a port in use and leaves nothing running", async () => {
    const port = await getPort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve));
    try {
      await expect(startDevnet({ port })).rejects.toBeInstanceOf(PortInUseError);
    } finally {
      holder.close();
    }
  });

  it("stop() frees the port", async () => {
    const devnet = await startDevnet({ accounts: 1 });
    const port = Number(new URL(devnet.rpcUrl).port);
    expect(await portIsFree(port)).toBe(false);
    await devnet.stop();
    expect(await portIsFree(port)).toBe(true);
  });

  it("leaves no spilled anvil state on disk after stop, and sweeps the cache a killed harness left", async () => {
    const ownCaches = () =>
      readdirSync(tmpdir()).filter((name) => name.startsWith(`x402-devnet-anvil-${process.pid}-`));
    const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
    const stale = mkdtempSync(join(tmpdir(), `x402-devnet-anvil-${deadPid}-`));
    writeFileSync(join(stale, "state.json"), "{}");
    const before = ownCaches();
    const anvil = anvilInstance({ port: await getPort() });
    await anvil.start();
    try {
      expect(existsSync(stale)).toBe(false);
      const [cache] = ownCaches().filter((name) => !before.includes(name));
      expect(cache).toBeDefined();
      // Past anvil's in-memory limit, a full-history anvil writes each older block's state to its cache.
      const client = createTestClient({ mode: "anvil", transport: http(`http://127.0.0.1:${anvil.port}`) });
      await client.mine({ blocks: 600 });
      const spilled = readdirSync(join(tmpdir(), cache as string), { recursive: true });
      expect(spilled.length).toBeGreaterThan(0);
    } finally {
      await anvil.stop();
    }
    expect(ownCaches()).toEqual(before);
  });
});

describe("fork mode (the upstream is another local devnet, standing in for Base)", () => {
  let upstream: Devnet;
  beforeAll(async () => {
    upstream = await startDevnet({ accounts: 1 });
  });
  afterAll(() => upstream?.stop());

  it("forks, checks USDC and funds wallets through the master minter", async () => {
    const fork = await startDevnet({ forkUrl: upstream.rpcUrl, accounts: 3, fund: { usdc: 7n } });
    try {
      expect(fork.mode).toBe("fork");
      expect(fork.chainId).toBe(BASE_CHAIN_ID);
      const addresses = fork.accounts.map((a) => a.address);
      // account 0 already held upstream's funding; the others start from nothing.
      expect(await usdcBalances(fork, addresses)).toEqual([DEFAULT_FUNDING.usdc + 7n, 7n, 7n]);
      expect(await usdcBalances(upstream, addresses.slice(1))).toEqual([0n, 0n]);
    } finally {
      await fork.stop();
    }
  });

  it("refuses an unreachable fork URL", async () => {
    const port = await getPort();
    await expect(startDevnet({ forkUrl: `http://127.0.0.1:${port}` })).rejects.toBeInstanceOf(
      ForkUnreachableError,
    );
    await expect(startDevnet({ forkUrl: "not a url" })).rejects.toBeInstanceOf(ForkUnreachableError);
  });

  it("refuses a chain without USDC at the canonical address, and stops its anvil", async () => {
    const bare = anvilInstance({ port: await getPort(), chainId: 8453 });
    await bare.start();
    const forkPort = await getPort();
    try {
      await expect(
        startDevnet({ forkUrl: `http://127.0.0.1:${bare.port}`, port: forkPort }),
      ).rejects.toBeInstanceOf(ForkMissingUsdcError);
      expect(await portIsFree(forkPort)).toBe(true);
    } finally {
      await bare.stop();
    }
  });
});
