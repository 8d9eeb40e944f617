import {
  createPublicClient,
  custom,
  hexToBytes,
  keccak256,
  type PublicClient,
  toFunctionSelector,
  toHex,
} from "viem";
import { describe, expect, it } from "vitest";
import {
  costOf,
  costPrices,
  DEFAULT_COST_PRICES,
  fjordEstimatedSize,
  fjordL1Fee,
  flzCompressLen,
  formatCost,
  type L1FeeParams,
  readL1FeeParams,
  settlementTransaction,
} from "../../src/scenario/cost.ts";
import { ScenarioInputError } from "../../src/scenario/validate.ts";

/** Bytes no 3-byte sequence repeats in (keccak output chained), so FastLZ can only copy them as literals. */
function incompressible(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let seed = keccak256(toHex("seed"));
  for (let i = 0; i < length; i += 32) {
    out.set(hexToBytes(seed).slice(0, Math.min(32, length - i)), i);
    seed = keccak256(seed);
  }
  return out;
}

describe("flzCompressLen", () => {
  it("counts FastLZ's literal runs: a header byte per run of up to 32", () => {
    expect(flzCompressLen(new Uint8Array())).toBe(0);
    expect(flzCompressLen(incompressible(10))).toBe(11);
    // 3 runs of 32 and one of 4.
    expect(flzCompressLen(incompressible(100))).toBe(3 * 33 + 5);
  });

  it("copies a repeat as a match: 64 zero bytes are 2 literals, one match and 5 literals", () => {
    // Worked by hand through FastLZ level 1: literals 3 bytes, a 55-byte match 3 bytes, 5 trailing literals 6.
    expect(flzCompressLen(new Uint8Array(64))).toBe(12);
    // A match longer than 262 bytes takes 3 bytes for each 262.
    expect(flzCompressLen(new Uint8Array(1_000))).toBe(3 + 3 * 3 + 3 + 6);
  });

  it("sizes a settlement transaction as Base would price it: batches share their repeated parts", () => {
    const sizes = [1, 2, 8].map((batch) =>
      flzCompressLen(hexToBytes(settlementTransaction(batch, 80_000, 0.01))),
    );
    const raw = [1, 2, 8].map((batch) => hexToBytes(settlementTransaction(batch, 80_000, 0.01)).length);
    for (const [i, size] of sizes.entries()) expect(size).toBeLessThan(raw[i] ?? 0);
    // Each more authorization adds its signature, nonce and payer (~150 incompressible bytes), not its padding.
    const perExtra = ((sizes[2] ?? 0) - (sizes[1] ?? 0)) / 6;
    expect(perExtra).toBeGreaterThan(140);
    expect(perExtra).toBeLessThan((raw[2] ?? 0) / 8);
  });
});

describe("the Fjord L1 fee", () => {
  const params: L1FeeParams = {
    l1BaseFeeGwei: 1,
    blobBaseFeeGwei: 1e-9,
    baseFeeScalar: 2_269,
    blobBaseFeeScalar: 1_055_762,
    source: "test",
  };

  it("estimates the size by Fjord's regression, with its 100-byte floor", () => {
    expect(fjordEstimatedSize(200)).toBe(-42_585_600n + 836_500n * 200n);
    expect(fjordEstimatedSize(100)).toBe(100_000_000n);
  });

  it("prices it as GasPriceOracle.getL1Fee: (scalar × 16 × L1 base fee + blob scalar × blob base fee) × size / 1e12", () => {
    const scaled = 2_269n * 16n * 1_000_000_000n + 1_055_762n * 1n;
    expect(fjordL1Fee(200, params)).toBe(((-42_585_600n + 836_500n * 200n) * scaled) / 10n ** 12n);
    expect(fjordL1Fee(200, { ...params, l1BaseFeeGwei: 2 })).toBeGreaterThan(fjordL1Fee(200, params));
  });
});

describe("costOf", () => {
  const run = (settlements: number, transactions: number, gasUsed: number, durationMs = 10_000) => ({
    durationMs,
    chain: {
      startBlock: 1,
      endBlock: 10,
      settlements,
      settlementTransactions: transactions,
      gasUsed: String(gasUsed),
    },
  });

  it("prices each settlement alone: measured gas at the L2 base fee, plus one transaction's L1 data fee", () => {
    const cost = costOf(run(100, 100, 100 * 60_000));
    expect(cost).toMatchObject({
      settlements: 100,
      transactions: 100,
      settlementsPerTransaction: 1,
      gasPerTransaction: 60_000,
      gasPerSettlement: 60_000,
      settlementsPerSecond: 10,
      prices: DEFAULT_COST_PRICES,
    });
    // 60,000 gas × 0.01 gwei = 0.0000006 ETH, $0.0018 at $3,000.
    expect(cost.perSettlementWei.l2).toBe("600000000000");
    expect(cost.usdPer1000Settlements.l2).toBe(1.8);
    const l1 = fjordL1Fee(cost.l1.fastLzBytes, DEFAULT_COST_PRICES.l1);
    expect(cost.l1.feePerTransactionWei).toBe(l1.toString());
    expect(cost.perSettlementWei.l1).toBe(l1.toString());
    const total = 600_000_000_000n + l1;
    expect(cost.perSettlementWei.total).toBe(total.toString());
    // 10 settlements a second for an hour, shared by the stack's 4 relayers.
    expect(cost.ethPerHour.total).toBeCloseTo((Number(total) / 1e18) * 36_000, 9);
    expect(cost.ethPerHour.perRelayer).toBeCloseTo(cost.ethPerHour.total / 4, 9);
  });

  it("spreads a batch's one L1 data fee over its settlements", () => {
    const single = costOf(run(100, 100, 100 * 60_000));
    const batched = costOf(run(400, 100, 100 * 40_000 + 400 * 45_000));
    expect(batched.settlementsPerTransaction).toBe(4);
    expect(batched.gasPerSettlement).toBe(55_000);
    expect(BigInt(batched.perSettlementWei.l1)).toBeLessThan(BigInt(single.perSettlementWei.l1));
    expect(BigInt(batched.l1.feePerTransactionWei)).toBeGreaterThan(BigInt(single.l1.feePerTransactionWei));
  });

  it("takes the prices given, and scales USD with the ETH price", () => {
    const prices = costPrices({ ethUsd: 6_000, l2BaseFeeGwei: 0.02, relayers: 2 });
    const cost = costOf(run(100, 100, 100 * 60_000), prices);
    expect(cost.usdPer1000Settlements.l2).toBe(7.2);
    expect(cost.prices).toMatchObject({
      ethUsd: 6_000,
      l2BaseFeeGwei: 0.02,
      relayers: 2,
      l1: { source: "defaults" },
    });
    expect(cost.ethPerHour.perRelayer).toBeCloseTo(cost.ethPerHour.total / 2, 9);
  });

  it("has nothing to price when nothing settled, and says so", () => {
    const cost = costOf(run(0, 0, 0));
    expect(cost).toMatchObject({
      settlementsPerTransaction: null,
      gasPerSettlement: null,
      settlementsPerSecond: 0,
    });
    expect(cost.perSettlementWei.total).toBe("0");
    expect(formatCost(cost)).toBe("cost: no settlement to price\n");
  });

  it("is plain JSON", () => {
    const cost = costOf(run(100, 50, 100 * 55_000));
    expect(JSON.parse(JSON.stringify(cost))).toEqual(cost);
    expect(formatCost(cost)).toContain("USD per 1,000 settlements at $3000/ETH");
  });

  it("refuses a price that is not a number of at least 0", () => {
    expect(() => costPrices({ ethUsd: -1 })).toThrow(ScenarioInputError);
    expect(() => costPrices({ l2BaseFeeGwei: Number.NaN })).toThrow(/l2BaseFeeGwei/);
    expect(() => costPrices({ relayers: 0 })).toThrow(/relayers/);
  });
});

describe("readL1FeeParams", () => {
  /** A chain answering as Base's GasPriceOracle would, or with no code there at all. */
  function chain(withOracle: boolean) {
    const words: Record<string, bigint> = {
      [toFunctionSelector("l1BaseFee()")]: 2_500_000_000n,
      [toFunctionSelector("blobBaseFee()")]: 3n,
      [toFunctionSelector("baseFeeScalar()")]: 2_269n,
      [toFunctionSelector("blobBaseFeeScalar()")]: 1_055_762n,
    };
    return createPublicClient({
      transport: custom({
        async request({ method, params }) {
          if (method === "eth_chainId") return "0x2105";
          if (method === "eth_getCode") return withOracle ? "0x6080" : "0x";
          if (method === "eth_call") {
            const [call] = params as [{ to: string; data: string }];
            expect(call.to.toLowerCase()).toBe("0x420000000000000000000000000000000000000f");
            const word = words[call.data.slice(0, 10)];
            if (word === undefined) throw new Error(`unexpected call ${call.data}`);
            return toHex(word, { size: 32 });
          }
          throw new Error(`unexpected ${method}`);
        },
      }),
    });
  }

  it("reads the L1 base fee, blob base fee and scalars from the predeploy", async () => {
    expect(await readL1FeeParams(chain(true) as PublicClient, "http://fork")).toEqual({
      l1BaseFeeGwei: 2.5,
      blobBaseFeeGwei: 3e-9,
      baseFeeScalar: 2_269,
      blobBaseFeeScalar: 1_055_762,
      source: "http://fork",
    });
  });

  it("has none to read on a chain without it, the mock devnet", async () => {
    expect(await readL1FeeParams(chain(false) as PublicClient, "http://devnet")).toBeUndefined();
  });
});
