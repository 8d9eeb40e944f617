import {
  type Address,
  createPublicClient,
  type Hex,
  hexToBytes,
  http,
  keccak256,
  type PublicClient,
  parseAbi,
  serializeTransaction,
  stringToHex,
} from "viem";
import { chainConfig } from "viem/op-stack";
import { BASE_CHAIN_ID, MULTICALL3_ADDRESS, USDC_ADDRESS } from "../chain/index.ts";
import { aggregate3CallData, transferCallData } from "../facilitator/exact-evm/abi.ts";
import type { RunReport } from "./report.ts";
import { ScenarioInputError } from "./validate.ts";

/**
 * What Base charges for data posted to L1 (Ecotone/Fjord): the L1 base fee and blob base fee the chain last
 * saw, and the chain's scalars (millionths), as the GasPriceOracle predeploy publishes them.
 */
export type L1FeeParams = {
  l1BaseFeeGwei: number;
  blobBaseFeeGwei: number;
  /** `baseFeeScalar()`, in millionths: the weight of the L1 base fee (calldata posting). */
  baseFeeScalar: number;
  /** `blobBaseFeeScalar()`, in millionths: the weight of the blob base fee. */
  blobBaseFeeScalar: number;
  /** Where these came from: `defaults`, or the RPC URL whose GasPriceOracle was read. */
  source: string;
};

/** The prices a cost is figured at. */
export type CostPrices = {
  /** USD per ETH. */
  ethUsd: number;
  /** The L2 execution price, gwei per gas (base fee plus whatever priority fee the relayers pay). */
  l2BaseFeeGwei: number;
  l1: L1FeeParams;
  /** Relayer accounts sharing the settlements, for the ETH each burns per hour. */
  relayers: number;
};

/** What a caller may set; the rest are the documented defaults. */
export type CostOptions = Partial<Omit<CostPrices, "l1">> & { l1?: Partial<L1FeeParams> };

/**
 * Base mainnet's scalars (SystemConfig, published by its GasPriceOracle) and L1 prices typical of 2025: an
 * L1 base fee of 1 gwei and an idle blob market at its 1 wei floor. A fork reads today's from the chain.
 */
export const DEFAULT_L1_FEE_PARAMS: L1FeeParams = {
  l1BaseFeeGwei: 1,
  blobBaseFeeGwei: 1e-9,
  baseFeeScalar: 2_269,
  blobBaseFeeScalar: 1_055_762,
  source: "defaults",
};

/** $3,000 per ETH, 0.01 gwei per L2 gas (Base's base fee in quiet hours), and the stack's 4 relayers. */
export const DEFAULT_COST_PRICES: CostPrices = {
  ethUsd: 3_000,
  l2BaseFeeGwei: 0.01,
  l1: DEFAULT_L1_FEE_PARAMS,
  relayers: 4,
};

/** What settling cost in a run, and what it would cost on Base at `prices`. Plain JSON (wei as strings). */
export type SettlementCost = {
  prices: CostPrices;
  settlements: number;
  transactions: number;
  /** Settlements per transaction: 1 when every one went alone, more when the facilitator batched. */
  settlementsPerTransaction: number | null;
  /** Gas as measured on the devnet, averaged over the run's settlement transactions. */
  gasPerTransaction: number | null;
  gasPerSettlement: number | null;
  /** The L1 data fee of one transaction of the run's average batch, as Base's GasPriceOracle prices it (Fjord). */
  l1: { fastLzBytes: number; estimatedBytes: number; feePerTransactionWei: string };
  /** Per settlement, in wei: L2 execution, the L1 data fee, and their sum. */
  perSettlementWei: { l2: string; l1: string; total: string };
  usdPer1000Settlements: { l2: number; l1: number; total: number };
  /** At the run's measured settlement rate. */
  settlementsPerSecond: number;
  ethPerHour: { total: number; perRelayer: number };
};

const GWEI = 1_000_000_000;

function gweiToWei(gwei: number): bigint {
  // Rounded to whole wei: a blob base fee of 1 wei is 1e-9 gwei, below a float's care for gwei.
  return BigInt(Math.round(gwei * GWEI));
}

const weiToEth = (wei: bigint) => Number(wei) / 1e18;

/** Prices with the caller's choices over the defaults; each figure must be a finite number ≥ 0. */
export function costPrices(options: CostOptions = {}, l1FromChain?: L1FeeParams): CostPrices {
  const prices: CostPrices = {
    ethUsd: options.ethUsd ?? DEFAULT_COST_PRICES.ethUsd,
    l2BaseFeeGwei: options.l2BaseFeeGwei ?? DEFAULT_COST_PRICES.l2BaseFeeGwei,
    relayers: options.relayers ?? DEFAULT_COST_PRICES.relayers,
    l1: { ...(l1FromChain ?? DEFAULT_L1_FEE_PARAMS), ...options.l1 },
  };
  const figures: [string, number][] = [
    ["ethUsd", prices.ethUsd],
    ["l2BaseFeeGwei", prices.l2BaseFeeGwei],
    ["relayers", prices.relayers],
    ["l1.l1BaseFeeGwei", prices.l1.l1BaseFeeGwei],
    ["l1.blobBaseFeeGwei", prices.l1.blobBaseFeeGwei],
    ["l1.baseFeeScalar", prices.l1.baseFeeScalar],
    ["l1.blobBaseFeeScalar", prices.l1.blobBaseFeeScalar],
  ];
  for (const [name, value] of figures) {
    if (!Number.isFinite(value) || value < 0) {
      throw new ScenarioInputError(`${name} must be a number of at least 0, got ${value}`);
    }
  }
  if (!Number.isInteger(prices.relayers) || prices.relayers < 1) {
    throw new ScenarioInputError(`relayers must be a whole number above 0, got ${prices.relayers}`);
  }
  return prices;
}

const GAS_PRICE_ORACLE = chainConfig.contracts.gasPriceOracle.address;
// viem's gasPriceOracleAbi predates Ecotone: it has neither the scalars nor the blob base fee.
const ecotoneOracleAbi = parseAbi([
  "function l1BaseFee() view returns (uint256)",
  "function blobBaseFee() view returns (uint256)",
  "function baseFeeScalar() view returns (uint32)",
  "function blobBaseFeeScalar() view returns (uint32)",
]);

/**
 * The L1 fee parameters Base's GasPriceOracle publishes, read from a chain that has the predeploy (a fork
 * of Base); undefined on one without it (the mock devnet).
 */
export async function readL1FeeParams(
  client: Pick<PublicClient, "getCode" | "readContract">,
  source: string,
): Promise<L1FeeParams | undefined> {
  const code = await client.getCode({ address: GAS_PRICE_ORACLE });
  if (code === undefined || code === "0x") return undefined;
  const read = (functionName: "l1BaseFee" | "blobBaseFee" | "baseFeeScalar" | "blobBaseFeeScalar") =>
    client.readContract({ address: GAS_PRICE_ORACLE, abi: ecotoneOracleAbi, functionName });
  const [l1BaseFee, blobBaseFee, baseFeeScalar, blobBaseFeeScalar] = await Promise.all([
    read("l1BaseFee"),
    read("blobBaseFee"),
    read("baseFeeScalar"),
    read("blobBaseFeeScalar"),
  ]);
  return {
    l1BaseFeeGwei: Number(l1BaseFee) / GWEI,
    blobBaseFeeGwei: Number(blobBaseFee) / GWEI,
    baseFeeScalar: Number(baseFeeScalar),
    blobBaseFeeScalar: Number(blobBaseFeeScalar),
    source,
  };
}

/** `readL1FeeParams` on an RPC URL (the chain a run forked or attached to), which outlives the run's stack. */
export async function readL1FeeParamsAt(rpcUrl: string): Promise<L1FeeParams | undefined> {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0, timeout: 10_000 }) });
  return readL1FeeParams(client, rpcUrl);
}

/**
 * The length FastLZ (level 1, as Solady's LibZip and op-geth's FlzCompressLen) compresses `data` to: what
 * Fjord prices a transaction's L1 data by.
 */
export function flzCompressLen(data: Uint8Array): number {
  const end = data.length - 4;
  const table = new Int32Array(8192);
  const u24 = (at: number) => (data[at] ?? 0) | ((data[at + 1] ?? 0) << 8) | ((data[at + 2] ?? 0) << 16);
  // Math.imul keeps the product's low 32 bits exact, as the EVM's 256-bit multiply does; a float would not.
  const hash = (x: number) => (Math.imul(2654435769, x) >>> 19) & 8191;
  let length = 0;
  const literals = (run: number) => {
    length += 33 * Math.floor(run / 32);
    if (run % 32 > 0) length += (run % 32) + 1;
  };
  let anchor = 0;
  let i = 2;
  while (i < end - 9) {
    let seq: number;
    let ref: number;
    let distance: number;
    let candidate: number;
    let matched = false;
    for (;;) {
      seq = u24(i);
      const h = hash(seq);
      ref = table[h] ?? 0;
      table[h] = i;
      distance = i - ref;
      candidate = distance < 8192 ? u24(ref) : 0x1000000;
      if (!(i < end - 9)) break;
      i++;
      if (seq === candidate) {
        matched = true;
        break;
      }
    }
    if (!matched || i >= end - 9) break;
    i--;
    if (i > anchor) literals(i - anchor);
    let len = 0;
    const p = ref + 3;
    const q = i + 3;
    let bound = end - q;
    // As FastLZ counts it: one past the first mismatch, or the whole bound.
    for (; len < bound; len++) if (data[p + len] !== data[q + len]) bound = 0;
    i += len;
    for (; len > 262; len -= 262) length += 3;
    length += len < 7 ? 2 : 3;
    table[hash(u24(i))] = i;
    i++;
    table[hash(u24(i))] = i;
    i++;
    anchor = i;
  }
  literals(end + 4 - anchor);
  return length;
}

/** Fjord's linear regression from FastLZ size to the bytes a batch spends, with its 100-byte floor (×1e6). */
export function fjordEstimatedSize(fastLzBytes: number): bigint {
  const estimate = -42_585_600n + 836_500n * BigInt(fastLzBytes);
  const floor = 100_000_000n;
  return estimate < floor ? floor : estimate;
}

/** The L1 data fee of a transaction FastLZ compresses to `fastLzBytes`, as GasPriceOracle.getL1Fee prices it (Fjord). */
export function fjordL1Fee(fastLzBytes: number, params: L1FeeParams): bigint {
  const scaled =
    BigInt(Math.round(params.baseFeeScalar)) * 16n * gweiToWei(params.l1BaseFeeGwei) +
    BigInt(Math.round(params.blobBaseFeeScalar)) * gweiToWei(params.blobBaseFeeGwei);
  return (fjordEstimatedSize(fastLzBytes) * scaled) / 1_000_000_000_000n;
}

/** Bytes that look like a hash or a signature: as incompressible as real ones, the same on every call. */
const pseudoRandom = (label: string, index: number) => keccak256(stringToHex(`${label}:${index}`));

const addressOf = (label: string, index: number) => `0x${pseudoRandom(label, index).slice(26)}` as Address;

/**
 * A signed settlement transaction as the facilitator sends it: one `transferWithAuthorization` to USDC, or
 * `batch` of them in one Multicall3 `aggregate3`, each from another payer to one payee. Built as on Base
 * mainnet whichever network the devnet ran as: the cost is what the settlements would cost in production,
 * at Base's prices (Base Sepolia's gas is free), and the other network's ids would change a byte or two.
 */
export function settlementTransaction(batch: number, gas: number, maxFeeGwei: number): Hex {
  const payTo = addressOf("payee", 0);
  const calls = Array.from({ length: batch }, (_, i) =>
    transferCallData({
      authorization: {
        from: addressOf("payer", i),
        to: payTo,
        value: "1000",
        validAfter: "0",
        validBefore: "1767225600",
        nonce: pseudoRandom("nonce", i),
      },
      signature: `${pseudoRandom("r", i)}${pseudoRandom("s", i).slice(2)}1b` as Hex,
    }),
  );
  const single = batch === 1 && calls[0] !== undefined;
  return serializeTransaction(
    {
      type: "eip1559",
      chainId: BASE_CHAIN_ID,
      nonce: 123_456,
      gas: BigInt(Math.round(gas)),
      maxFeePerGas: gweiToWei(maxFeeGwei * 2),
      maxPriorityFeePerGas: gweiToWei(maxFeeGwei / 10),
      to: single ? USDC_ADDRESS : MULTICALL3_ADDRESS,
      data: single
        ? (calls[0] as Hex)
        : aggregate3CallData(
            calls.map((callData) => ({ target: USDC_ADDRESS, allowFailure: true, callData })),
          ),
    },
    { r: pseudoRandom("tx-r", batch), s: pseudoRandom("tx-s", batch), yParity: 1 },
  );
}

const usd = (wei: bigint, prices: CostPrices, per: number) =>
  Math.round(weiToEth(wei) * prices.ethUsd * per * 1e6) / 1e6;

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * What the run's settlements cost, from what its report measured on chain (gas, settlements per
 * transaction, the settlement rate), priced at `prices`. Pure: the L1 data fee is figured for a
 * settlement transaction of the run's average batch size built the way the facilitator builds one, so no
 * chain is read. Null figures when the run settled nothing.
 */
export function costOf(
  report: Pick<RunReport, "chain" | "durationMs">,
  prices: CostPrices = DEFAULT_COST_PRICES,
): SettlementCost {
  const { settlements, settlementTransactions: transactions } = report.chain;
  const gasUsed = BigInt(report.chain.gasUsed);
  const perTx = transactions > 0 ? settlements / transactions : null;
  const gasPerTransaction = transactions > 0 ? Number(gasUsed) / transactions : null;
  const gasPerSettlement = settlements > 0 ? Number(gasUsed) / settlements : null;
  const batch = Math.max(1, Math.round(perTx ?? 1));
  const raw = settlementTransaction(batch, gasPerTransaction ?? 80_000, prices.l2BaseFeeGwei);
  const fastLzBytes = flzCompressLen(hexToBytes(raw));
  const l1PerTransaction = fjordL1Fee(fastLzBytes, prices.l1);
  const l2PerSettlement =
    gasPerSettlement === null ? 0n : BigInt(Math.round(gasPerSettlement)) * gweiToWei(prices.l2BaseFeeGwei);
  const l1PerSettlement =
    perTx === null ? 0n : (l1PerTransaction * BigInt(transactions)) / BigInt(settlements);
  const total = l2PerSettlement + l1PerSettlement;
  const settlementsPerSecond = report.durationMs > 0 ? settlements / (report.durationMs / 1000) : 0;
  const ethPerHour = weiToEth(total) * settlementsPerSecond * 3600;
  return {
    prices,
    settlements,
    transactions,
    settlementsPerTransaction: perTx === null ? null : round(perTx, 3),
    gasPerTransaction: gasPerTransaction === null ? null : Math.round(gasPerTransaction),
    gasPerSettlement: gasPerSettlement === null ? null : Math.round(gasPerSettlement),
    l1: {
      fastLzBytes,
      estimatedBytes: round(Number(fjordEstimatedSize(fastLzBytes)) / 1e6, 2),
      feePerTransactionWei: l1PerTransaction.toString(),
    },
    perSettlementWei: {
      l2: l2PerSettlement.toString(),
      l1: l1PerSettlement.toString(),
      total: total.toString(),
    },
    usdPer1000Settlements: {
      l2: usd(l2PerSettlement, prices, 1000),
      l1: usd(l1PerSettlement, prices, 1000),
      total: usd(total, prices, 1000),
    },
    settlementsPerSecond: round(settlementsPerSecond, 2),
    ethPerHour: {
      total: round(ethPerHour, 9),
      perRelayer: round(ethPerHour / prices.relayers, 9),
    },
  };
}

/** The cost in a few lines, for the terminal. */
export function formatCost(cost: SettlementCost): string {
  const { prices } = cost;
  if (cost.settlements === 0) return "cost: no settlement to price\n";
  return [
    `cost per settlement (${cost.settlements} settlements in ${cost.transactions} transactions, ${cost.settlementsPerTransaction} per transaction):`,
    `  gas ${cost.gasPerSettlement} per settlement, ${cost.gasPerTransaction} per transaction (measured)`,
    `  USD per 1,000 settlements at $${prices.ethUsd}/ETH: ${cost.usdPer1000Settlements.total} = L2 ${cost.usdPer1000Settlements.l2} (${prices.l2BaseFeeGwei} gwei) + L1 data ${cost.usdPer1000Settlements.l1} (${cost.l1.fastLzBytes} FastLZ bytes per transaction; L1 ${prices.l1.l1BaseFeeGwei} gwei, blob ${prices.l1.blobBaseFeeGwei} gwei, scalars ${prices.l1.baseFeeScalar}/${prices.l1.blobBaseFeeScalar}, ${prices.l1.source})`,
    `  ETH burnt per hour at ${cost.settlementsPerSecond} settlements/s: ${cost.ethPerHour.total} (${cost.ethPerHour.perRelayer} per relayer of ${prices.relayers})`,
    "",
  ].join("\n");
}
