import {
  type Address,
  type Chain,
  type Client,
  erc20Abi,
  type Hash,
  type Hex,
  parseAbiItem,
  type Transport,
} from "viem";
import { Interned, RecordChunks, readHex32, writeHex32 } from "../agents/compact.ts";
import {
  type DevnetClient,
  readPayoutSplitter,
  type Split,
  splitPayout,
  USDC_ADDRESS,
} from "../chain/index.ts";
import { gasUsedByTransactions, logPages, TRANSFER_EVENT } from "./chain-scan.ts";
import type { InvariantResult } from "./report.ts";

/**
 * A paid request as the invariants need it: who paid whom, how much, in which transaction. A 200 whose
 * server named no transaction is still a paid response, and one no settlement can match (unless it was
 * charged nothing). `amount` is what the response says was charged; `signed`, the most the payer signed
 * for where that differs (a metered payment), which no charge may exceed.
 */
export type PaidRecord = {
  payer: Address;
  payTo: Address;
  amount: bigint;
  transaction: Hash | undefined;
  signed?: bigint;
};

// One paid response's record: who paid whom how much (u32), flags (u8), the transaction's 32 bytes.
const PARTIES = 0;
const FLAGS = 4;
const TRANSACTION = 8;
const RECORD_BYTES = 40;
const HAS_TRANSACTION = 1;
/** A transaction the server spelt otherwise than 32 bytes of lowercase hex: kept as it was sent. */
const SPELT_OTHERWISE = 2;

/**
 * Every paid response of a run, kept for the invariants after it, compactly: a long run has hundreds of
 * thousands, and the harness must not grow by a record object (with its strings and bigints) for each.
 * Who paid whom how much is interned (agents × payees × prices, a handful), so a response adds 40 bytes:
 * that, and its transaction hash. The records are built one at a time as the log is iterated.
 */
export class PaidLog implements Iterable<PaidRecord> {
  private readonly records = new RecordChunks(RECORD_BYTES);
  private readonly parties = new Interned<Omit<PaidRecord, "transaction">>();
  private readonly spelt = new Map<number, Hash>();

  get size(): number {
    return this.records.size;
  }

  add({ payer, payTo, amount, transaction, signed }: PaidRecord): void {
    const index = this.records.size;
    const [buffer, offset] = this.records.append();
    const key = JSON.stringify([payer, payTo, `${amount}`, signed === undefined ? null : `${signed}`]);
    buffer.writeUInt32LE(
      this.parties.id(key, () => ({ payer, payTo, amount, ...(signed === undefined ? {} : { signed }) })),
      offset + PARTIES,
    );
    if (transaction === undefined) return;
    if (writeHex32(buffer, offset + TRANSACTION, transaction)) buffer[offset + FLAGS] = HAS_TRANSACTION;
    else {
      buffer[offset + FLAGS] = SPELT_OTHERWISE;
      this.spelt.set(index, transaction);
    }
  }

  /** Every address paid, once each, as the responses spelt it. */
  payTos(): Address[] {
    return [...new Set(this.parties.all().map((p) => p.payTo))];
  }

  *[Symbol.iterator](): Iterator<PaidRecord> {
    for (let index = 0; index < this.records.size; index++) {
      const [buffer, offset] = this.records.at(index);
      const flags = buffer[offset + FLAGS] ?? 0;
      const transaction =
        flags & HAS_TRANSACTION
          ? readHex32(buffer, offset + TRANSACTION)
          : flags & SPELT_OTHERWISE
            ? this.spelt.get(index)
            : undefined;
      yield { ...this.parties.get(buffer.readUInt32LE(offset + PARTIES)), transaction };
    }
  }
}

export type BalanceSnapshot = Map<string, bigint>;

const authorizationUsed = parseAbiItem(
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
);

/** USDC balances now, or as of `blockNumber`; `token` is the devnet's USDC (`Devnet.usdc.address`). */
export async function usdcBalances(
  client: DevnetClient,
  addresses: readonly Address[],
  blockNumber?: bigint,
  token: Address = USDC_ADDRESS,
): Promise<BalanceSnapshot> {
  const unique = [...new Set(addresses.map((a) => a.toLowerCase() as Address))];
  if (unique.length === 0) return new Map();
  const balances = await client.multicall({
    blockNumber,
    allowFailure: false,
    contracts: unique.map(
      (address) => ({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [address] }) as const,
    ),
  });
  return new Map(unique.map((address, i) => [address, balances[i] as bigint]));
}

/**
 * What each address's USDC balance changed by over a block range, from the token's Transfer logs (USDC logs
 * every change of a balance, mints and burns included). A pruned chain keeps the state of its newest
 * blocks only, so a balance at a run's first block may be gone by the time the run learns whose to read;
 * the logs stay.
 */
export async function usdcNetTransfers(
  client: Client<Transport, Chain | undefined>,
  addresses: readonly Address[],
  fromBlock: bigint,
  toBlock: bigint,
  token: Address = USDC_ADDRESS,
): Promise<BalanceSnapshot> {
  const unique = [...new Set(addresses.map(lower))];
  const net: BalanceSnapshot = new Map(unique.map((address) => [address, 0n]));
  // An empty list would filter nothing on the node.
  if (unique.length === 0 || fromBlock > toBlock) return net;
  for (const [side, sign] of [
    ["to", 1n],
    ["from", -1n],
  ] as const) {
    for await (const page of logPages(client, {
      address: token,
      event: TRANSFER_EVENT,
      args: { [side]: unique },
      fromBlock,
      toBlock,
    })) {
      for (const log of page.logs) {
        const address = lower(log.args[side] ?? "0x");
        const balance = net.get(address);
        if (balance !== undefined) net.set(address, balance + sign * (log.args.value ?? 0n));
      }
    }
  }
  return net;
}

export type Settlement = { authorizer: Address; nonce: Hex; transaction: Hash };

export const lower = <T extends string>(value: T) => value.toLowerCase() as T;

export const sum = (values: Iterable<bigint>) => {
  let total = 0n;
  for (const v of values) total += v;
  return total;
};

const count = (values: Iterable<number>) => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

/**
 * Every EIP-3009 authorization the token consumed in the block range, read a page at a time but returned
 * all together: for a few settlements (a test's). A run's invariants use {@link scanSettlements}, which
 * keeps counts rather than the settlements.
 */
export async function settlementsBetween(
  client: Client<Transport, Chain | undefined>,
  fromBlock: bigint,
  toBlock: bigint,
  token: Address = USDC_ADDRESS,
): Promise<Settlement[]> {
  const settlements: Settlement[] = [];
  for await (const { logs } of logPages(client, {
    address: token,
    event: authorizationUsed,
    fromBlock,
    toBlock,
  })) {
    for (const log of logs) {
      settlements.push({
        authorizer: (log.args.authorizer ?? "0x") as Address,
        nonce: (log.args.nonce ?? "0x") as Hex,
        transaction: log.transactionHash,
      });
    }
  }
  return settlements;
}

/** The run's settlements as the money invariants need them: counted, and matched against its paid responses. */
export type SettlementScan = {
  /** AuthorizationUsed logs of USDC whose authorizer is one of the run's payers. */
  settlements: number;
  /** Settlements of an (authorizer, nonce) that had already settled. */
  duplicates: number;
  /** Transactions that carried the settlements, and the gas they used. */
  transactions: number;
  gasUsed: bigint;
  /** Paid responses that name no transaction, or one with no settlement of their payer left to stand for them. */
  paidWithoutSettlement: number;
  /** Settlements that no paid response stands for. */
  settlementsWithoutPaid: number;
};

export type SettlementScanOptions = {
  /** The run's agents: only their settlements count (on a shared chain, others' are not the run's). */
  payers: readonly Address[];
  /** Every paid response of the run: each must stand for one settlement of its payer in its transaction. */
  paid: Iterable<PaidRecord>;
  /** The run's blocks, first to last. */
  fromBlock: bigint;
  toBlock: bigint;
  /** The devnet's USDC (`Devnet.usdc.address`; default Base's). */
  token?: Address;
  /**
   * The run paid by Permit2 (`exact` by Permit2, `upto`): such a settlement leaves no `AuthorizationUsed`,
   * only the token's Transfer from the payer, so those are read too (Permit2 itself logs nothing).
   */
  permit2?: boolean;
  /**
   * Token logs that are channel deposits, not payments, by `payer:transaction` (lowercase) with how many
   * (`ChannelScan.deposits`): each is passed over once, in either pass.
   */
  deposits?: ReadonlyMap<string, number>;
  /** Logs per page (see {@link logPages}); the default suits a local node. */
  targetLogs?: number;
  /** Called after each page, e.g. for progress: the last block read, and the settlements counted so far. */
  onPage?: (progress: { toBlock: bigint; endBlock: bigint; settlements: number }) => void;
};

/**
 * Reads the run's settlements page by page and keeps only what the invariants need: counts, gas, and the
 * paid responses not yet matched. Memory holds one page of logs, the paid responses the run already holds,
 * and one nonce per settlement (for duplicates), however long the run.
 */
export async function scanSettlements(
  client: Client<Transport, Chain | undefined>,
  {
    payers,
    paid,
    fromBlock,
    toBlock,
    token = USDC_ADDRESS,
    permit2 = false,
    deposits,
    targetLogs,
    onPage,
  }: SettlementScanOptions,
): Promise<SettlementScan> {
  const tally = new SettlementTally(paid);
  const deposit = new Map(deposits);
  /** The log is one of a channel deposit's: it stands for no payment. */
  const isDeposit = (payer: string, transaction: string) => {
    const key = `${lower(payer)}:${transaction}`;
    const left = deposit.get(key) ?? 0;
    if (left > 0) deposit.set(key, left - 1);
    return left > 0;
  };
  let transactions = 0;
  let gasUsed = 0n;
  // An EIP-3009 settlement's Transfer is its AuthorizationUsed's: the Transfer pass must not count it again.
  const eip3009 = permit2 ? new Set<string>() : undefined;
  // An empty list of authorizers would filter nothing on the node: no payers, no settlements of theirs.
  if (payers.length > 0 && fromBlock <= toBlock) {
    for await (const page of logPages(client, {
      address: token,
      event: authorizationUsed,
      args: { authorizer: [...payers] },
      fromBlock,
      toBlock,
      targetLogs,
    })) {
      const byBlock = new Map<bigint, Set<Hash>>();
      for (const log of page.logs) {
        const transaction = lower(log.transactionHash);
        const authorizer = log.args.authorizer ?? "0x";
        eip3009?.add(`${lower(authorizer)}:${transaction}`);
        if (isDeposit(authorizer, transaction)) continue;
        tally.add(authorizer, log.args.nonce ?? "0x", transaction);
        entry(byBlock, log.blockNumber, () => new Set<Hash>()).add(transaction);
      }
      // A page holds whole blocks, so each transaction is counted in exactly one page.
      for (const inBlock of byBlock.values()) transactions += inBlock.size;
      gasUsed += await gasUsedByTransactions(client, byBlock);
      onPage?.({ toBlock: page.toBlock, endBlock: page.endBlock, settlements: tally.settlements });
    }
    if (eip3009) {
      for await (const page of logPages(client, {
        address: token,
        event: TRANSFER_EVENT,
        args: { from: [...payers] },
        fromBlock,
        toBlock,
        targetLogs,
      })) {
        const byBlock = new Map<bigint, Set<Hash>>();
        for (const log of page.logs) {
          const transaction = lower(log.transactionHash);
          const from = lower(log.args.from ?? "0x");
          if (eip3009.has(`${from}:${transaction}`) || isDeposit(from, transaction)) continue;
          // Permit2 refuses a spent nonce itself: a second transfer for one payment shows as one too many.
          tally.add(from, undefined, transaction);
          entry(byBlock, log.blockNumber, () => new Set<Hash>()).add(transaction);
        }
        for (const inBlock of byBlock.values()) transactions += inBlock.size;
        gasUsed += await gasUsedByTransactions(client, byBlock);
        onPage?.({ toBlock: page.toBlock, endBlock: page.endBlock, settlements: tally.settlements });
      }
    }
  }
  return tally.result(transactions, gasUsed);
}

/**
 * Counts settlements as they stream past and matches each against the paid responses still waiting for
 * one (per payer and transaction): a settlement takes a waiting response or is one too many, so nothing
 * is kept per settlement but its nonce.
 */
class SettlementTally {
  settlements = 0;
  private duplicates = 0;
  private withoutPaid = 0;
  private paidWithoutTransaction = 0;
  private readonly waiting = new Map<string, number>();
  private readonly nonces = new Map<string, Set<string>>();

  constructor(paid: Iterable<PaidRecord>) {
    for (const p of paid) {
      // A metered payment charged nothing settles without a transaction, and needs none.
      if (!p.transaction && p.amount === 0n) continue;
      if (!p.transaction) this.paidWithoutTransaction += 1;
      else {
        const key = `${lower(p.payer)}:${lower(p.transaction)}`;
        this.waiting.set(key, (this.waiting.get(key) ?? 0) + 1);
      }
    }
  }

  /** A settlement of `authorizer`'s in `transaction`; `nonce` when the token logged one (EIP-3009). */
  add(authorizer: Address, nonce: Hex | undefined, transaction: Hash): void {
    this.settlements += 1;
    if (nonce !== undefined) {
      const seen = entry(this.nonces, lower(authorizer), () => new Set<string>());
      if (seen.has(lower(nonce))) this.duplicates += 1;
      else seen.add(lower(nonce));
    }
    const key = `${lower(authorizer)}:${lower(transaction)}`;
    const left = this.waiting.get(key) ?? 0;
    if (left === 0) this.withoutPaid += 1;
    else if (left === 1) this.waiting.delete(key);
    else this.waiting.set(key, left - 1);
  }

  result(transactions: number, gasUsed: bigint): SettlementScan {
    return {
      settlements: this.settlements,
      duplicates: this.duplicates,
      transactions,
      gasUsed,
      paidWithoutSettlement: this.paidWithoutTransaction + count(this.waiting.values()),
      settlementsWithoutPaid: this.withoutPaid,
    };
  }
}

/** The value at `key`, stored first if there is none yet. */
function entry<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

/** `1 payee`, `2 payees`, `0 payees`. */
export const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

/**
 * The money invariants, from chain state after the run: what payers lost, payees gained and paid responses
 * claim must be the same amounts, and every paid response must stand for exactly one settlement on chain.
 * Channel payments are held to the channel invariants instead: their paid responses are left out of
 * `paid`, and the USDC that went into and out of the channels out of the balances (`channels`).
 */
export function moneyInvariants(input: {
  payers: readonly Address[];
  payees: readonly Address[];
  before: BalanceSnapshot;
  after: BalanceSnapshot;
  paid: Iterable<PaidRecord>;
  /** The run's settlements, scanned with the same payers and paid responses ({@link scanSettlements}). */
  settlements: SettlementScan;
  /** Payout splitters among the `payTo` addresses: what they receive is owed to their payees by share. */
  splits?: ReadonlyMap<string, Split>;
  /**
   * The run's channel flows, by lowercase address: what each payer lost to channels (deposits less what
   * came back) and what each payee received from them (settlements).
   */
  channels?: { lost: ReadonlyMap<string, bigint>; received: ReadonlyMap<string, bigint> };
}): InvariantResult[] {
  // A balance's change less what moved through channels: a channel payment moves money at its deposit,
  // refund and settlement, never per request.
  const delta = (address: Address) => {
    const key = address.toLowerCase();
    const change = (input.after.get(key) ?? 0n) - (input.before.get(key) ?? 0n);
    return change + (input.channels?.lost.get(key) ?? 0n) - (input.channels?.received.get(key) ?? 0n);
  };
  const payerSet = new Set(input.payers.map((a) => a.toLowerCase()));
  const payeeSet = new Set(input.payees.map((a) => a.toLowerCase()));
  const payersLost = -sum([...payerSet].map((a) => delta(a as Address)));
  const payeesGained = sum([...payeeSet].map((a) => delta(a as Address)));

  let responses = 0;
  let claimed = 0n;
  let overSigned = 0;
  const perPayer = new Map<string, bigint>();
  const perPayee = new Map<string, bigint>();
  const owe = (payee: string, amount: bigint) => perPayee.set(payee, (perPayee.get(payee) ?? 0n) + amount);
  for (const p of input.paid) {
    responses += 1;
    claimed += p.amount;
    if (p.signed !== undefined && p.amount > p.signed) overSigned += 1;
    perPayer.set(p.payer.toLowerCase(), (perPayer.get(p.payer.toLowerCase()) ?? 0n) + p.amount);
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
  const payerMismatches = [...payerSet].filter((a) => -delta(a as Address) !== (perPayer.get(a) ?? 0n));
  const { settlements, duplicates, paidWithoutSettlement, settlementsWithoutPaid } = input.settlements;

  return [
    {
      name: "money in equals money out",
      ok: payersLost === payeesGained && payeesGained === claimed,
      detail: `payers lost ${payersLost}, payees gained ${payeesGained}, paid responses claim ${claimed} (USDC base units${input.channels ? "; channel payments apart" : ""})`,
    },
    {
      name: "each payee received exactly its share of what its routes were paid",
      ok: payeeMismatches.length === 0,
      detail:
        payeeMismatches.length === 0
          ? `${plural(payeeSet.size, "payee")} balanced`
          : `mismatch: ${payeeMismatches
              .map((a) => `${a} received ${delta(a as Address)}, owed ${perPayee.get(a) ?? 0n}`)
              .join("; ")}`,
    },
    {
      // Per payer, for a metered payment as for any other: what the chain took is what its responses say.
      name: "each payer was charged exactly what its paid responses claim",
      ok: payerMismatches.length === 0,
      detail:
        payerMismatches.length === 0
          ? `${plural(payerSet.size, "payer")} balanced`
          : `mismatch: ${payerMismatches
              .slice(0, 5)
              .map((a) => `${a} lost ${-delta(a as Address)}, paid responses claim ${perPayer.get(a) ?? 0n}`)
              .join("; ")}${payerMismatches.length > 5 ? `; and ${payerMismatches.length - 5} more` : ""}`,
    },
    {
      name: "no payment charged more than its payer signed for",
      ok: overSigned === 0,
      detail: `${plural(overSigned, "paid response")} claiming more than the signed maximum`,
    },
    {
      name: "no authorization settled twice",
      ok: duplicates === 0,
      detail: `${plural(settlements, "settlement")}, ${plural(duplicates, "duplicate")}`,
    },
    {
      // Each paid response names a transaction; that transaction must have consumed one of this payer's
      // authorizations, and no settlement may be left over without a paid response (or counted twice).
      name: "every paid response matches exactly one settlement",
      ok: paidWithoutSettlement === 0 && settlementsWithoutPaid === 0,
      detail: `${plural(responses, "paid response")}, ${plural(settlements, "settlement")}, ${paidWithoutSettlement} without a settlement, ${plural(settlementsWithoutPaid, "settlement")} without a paid response`,
    },
  ];
}

/** The payout splitters among the addresses that were paid. */
export async function payoutSplits(
  client: DevnetClient,
  payTos: readonly Address[],
): Promise<Map<string, Split>> {
  const splits = new Map<string, Split>();
  for (const payTo of new Set(payTos.map((p) => p.toLowerCase()))) {
    const split = await readPayoutSplitter(client, payTo as Address);
    if (split) splits.set(payTo, split);
  }
  return splits;
}

/** Every payee was credited or none was: a splitter paid out in the settling transaction holds nothing. */
export function splitterInvariant(splits: ReadonlyMap<string, Split>, after: BalanceSnapshot) {
  if (splits.size === 0) return [];
  // The splitters were paid, so they are among the payees whose balances `after` holds.
  const holding = [...splits.keys()]
    .map((address) => [address, after.get(address) ?? 0n] as const)
    .filter(([, balance]) => balance !== 0n);
  return [
    {
      name: "payout splitters hold no funds",
      ok: holding.length === 0,
      detail:
        holding.length === 0
          ? `${splits.size} splitter${splits.size === 1 ? "" : "s"} paid out everything they received`
          : holding.map(([address, balance]) => `${address} holds ${balance}`).join("; "),
    },
  ];
}
