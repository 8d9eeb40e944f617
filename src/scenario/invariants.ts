import { type Address, erc20Abi, type Hash, type Hex, parseAbiItem } from "viem";
import { type DevnetClient, type Split, splitPayout, USDC_ADDRESS } from "../chain/index.ts";
import type { InvariantResult } from "./report.ts";

/**
 * A paid request as the invariants need it: who paid whom, how much, in which transaction. A 200 whose
 * server named no transaction is still a paid response, and one no settlement can match.
 */
export type PaidRecord = { payer: Address; payTo: Address; amount: bigint; transaction: Hash | undefined };

export type BalanceSnapshot = Map<string, bigint>;

const authorizationUsed = parseAbiItem(
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
);

/** USDC balances now, or as of `blockNumber`. */
export async function usdcBalances(
  client: DevnetClient,
  addresses: readonly Address[],
  blockNumber?: bigint,
): Promise<BalanceSnapshot> {
  const unique = [...new Set(addresses.map((a) => a.toLowerCase() as Address))];
  if (unique.length === 0) return new Map();
  const balances = await client.multicall({
    blockNumber,
    allowFailure: false,
    contracts: unique.map(
      (address) =>
        ({ address: USDC_ADDRESS, abi: erc20Abi, functionName: "balanceOf", args: [address] }) as const,
    ),
  });
  return new Map(unique.map((address, i) => [address, balances[i] as bigint]));
}

export type Settlement = { authorizer: Address; nonce: Hex; transaction: Hash };

/** Every EIP-3009 authorization the token consumed in the block range. */
export async function settlementsBetween(
  client: DevnetClient,
  fromBlock: bigint,
  toBlock: bigint,
): Promise<Settlement[]> {
  if (toBlock < fromBlock) return [];
  const logs = await client.getLogs({ address: USDC_ADDRESS, event: authorizationUsed, fromBlock, toBlock });
  return logs.map((log) => ({
    authorizer: (log.args.authorizer ?? "0x") as Address,
    nonce: (log.args.nonce ?? "0x") as Hex,
    transaction: log.transactionHash as Hash,
  }));
}

const sum = (values: Iterable<bigint>) => {
  let total = 0n;
  for (const v of values) total += v;
  return total;
};

/**
 * The money invariants, from chain state after the run: what payers lost, payees gained and paid responses
 * claim must be the same amounts, and every paid response must stand for exactly one settlement on chain.
 */
export function moneyInvariants(input: {
  payers: readonly Address[];
  payees: readonly Address[];
  before: BalanceSnapshot;
  after: BalanceSnapshot;
  paid: readonly PaidRecord[];
  settlements: readonly Settlement[];
  /** Payout splitters among the `payTo` addresses: what they receive is owed to their payees by share. */
  splits?: ReadonlyMap<string, Split>;
}): InvariantResult[] {
  const delta = (address: Address) =>
    (input.after.get(address.toLowerCase()) ?? 0n) - (input.before.get(address.toLowerCase()) ?? 0n);
  const payerSet = new Set(input.payers.map((a) => a.toLowerCase()));
  const payeeSet = new Set(input.payees.map((a) => a.toLowerCase()));
  const claimed = sum(input.paid.map((p) => p.amount));
  const payersLost = -sum([...payerSet].map((a) => delta(a as Address)));
  const payeesGained = sum([...payeeSet].map((a) => delta(a as Address)));

  const perPayee = new Map<string, bigint>();
  const owe = (payee: string, amount: bigint) => perPayee.set(payee, (perPayee.get(payee) ?? 0n) + amount);
  for (const p of input.paid) {
    const split = input.splits?.get(p.payTo.toLowerCase());
    if (!split) {
      owe(p.payTo.toLowerCase(), p.amount);
      continue;
    }
    const parts = splitPayout(p.amount, split.shares);
    split.payees.forEach((payee, i) => {
      owe(payee.toLowerCase(), parts[i] ?? 0n);
    });
  }
  const payeeMismatches = [...payeeSet].filter((a) => delta(a as Address) !== (perPayee.get(a) ?? 0n));

  const ours = input.settlements.filter((s) => payerSet.has(s.authorizer.toLowerCase()));
  const keys = ours.map((s) => `${s.authorizer.toLowerCase()}:${s.nonce}`);
  const duplicates = keys.length - new Set(keys).size;

  // Each paid response names a transaction; that transaction must have consumed one of this payer's
  // authorizations, and no settlement may be left over without a paid response (or counted twice).
  const available = new Map<string, number>();
  for (const s of ours) {
    const key = `${s.authorizer.toLowerCase()}:${s.transaction}`;
    available.set(key, (available.get(key) ?? 0) + 1);
  }
  let unmatched = 0;
  for (const p of input.paid) {
    const key = `${p.payer.toLowerCase()}:${p.transaction}`;
    const left = p.transaction ? (available.get(key) ?? 0) : 0;
    if (left === 0) unmatched += 1;
    else available.set(key, left - 1);
  }
  const unclaimed = sum([...available.values()].map(BigInt));

  return [
    {
      name: "money in equals money out",
      ok: payersLost === payeesGained && payeesGained === claimed,
      detail: `payers lost ${payersLost}, payees gained ${payeesGained}, paid responses claim ${claimed} (USDC base units)`,
    },
    {
      name: "each payee received exactly its share of what its routes were paid",
      ok: payeeMismatches.length === 0,
      detail:
        payeeMismatches.length === 0
          ? `${payeeSet.size} payees balanced`
          : `mismatch: ${payeeMismatches
              .map((a) => `${a} received ${delta(a as Address)}, owed ${perPayee.get(a) ?? 0n}`)
              .join("; ")}`,
    },
    {
      name: "no authorization settled twice",
      ok: duplicates === 0,
      detail: `${ours.length} settlements, ${duplicates} duplicates`,
    },
    {
      name: "every paid response matches exactly one settlement",
      ok: unmatched === 0 && unclaimed === 0n,
      detail: `${input.paid.length} paid responses, ${ours.length} settlements, ${unmatched} without a settlement, ${unclaimed} settlements without a paid response`,
    },
  ];
}
