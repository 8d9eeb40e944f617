import type { Address } from "viem";
import { DEFAULT_MAX_PER_PAYMENT } from "../../agents/index.ts";
import type { DevnetClient } from "../../chain/index.ts";
import { logPages, TRANSFER_EVENT } from "../chain-scan.ts";
import {
  lower,
  payoutSplits,
  plural,
  scanSettlements,
  splitterInvariant,
  sum,
  usdcBalances,
  usdcNetTransfers,
} from "../invariants.ts";
import type { InvariantResult, RunReport } from "../report.ts";
import { type ArtilleryJob, METRIC, SLOT_COUNTER } from "./job.ts";
import type { ArtilleryMetrics } from "./metrics.ts";
import { slotWallets } from "./worker-wallets.ts";

/** What the workers of one slot said they did, from the report's per-slot counters. */
export type SlotTally = { workers: number; wallets: number; paid: number; charged: number };

/** The slots the report names, with their counters. */
export function slotTallies(counters: Readonly<Record<string, number>>): Map<number, SlotTally> {
  const slots = new Map<number, SlotTally>();
  for (const [name, value] of Object.entries(counters)) {
    const match = SLOT_COUNTER.exec(name);
    if (!match) continue;
    const slot = Number(match[1]);
    let tally = slots.get(slot);
    if (!tally) {
      tally = { workers: 0, wallets: 0, paid: 0, charged: 0 };
      slots.set(slot, tally);
    }
    tally[match[2] as keyof SlotTally] = value;
  }
  return slots;
}

/** What left one payer's wallet as USDC Transfers over the run: each one a settled payment. */
type Outflow = { transfers: number; amount: bigint; largest: bigint };

export type ArtilleryChecks = {
  invariants: InvariantResult[];
  chain: RunReport["chain"];
  /** Every agent wallet the workers derived, found from the report's slots. */
  wallets: number;
};

/**
 * The money invariants of an Artillery run, from the report's counters and the chain. The workers cannot
 * hand back a record per paid response, so the checks are kept per worker slot, whose wallets the HD
 * range gives: every paid response a worker counted must be one settlement from its wallets, for exactly
 * what the response said was charged; the money the wallets lost must be what the payees gained; no
 * authorization may settle twice; no wallet may pay more than its policy allows.
 */
export async function checkArtilleryRun(input: {
  client: DevnetClient;
  metrics: ArtilleryMetrics;
  job: ArtilleryJob;
  mnemonic: string;
  /** The run's blocks, first to last. */
  fromBlock: bigint;
  toBlock: bigint;
}): Promise<ArtilleryChecks> {
  const { client, metrics, job, fromBlock, toBlock } = input;
  const token = job.chain.usdc.address;
  const slots = slotTallies(metrics.counters);
  const walletsOf = new Map<number, Address[]>();
  for (const [slot, tally] of slots) {
    walletsOf.set(
      slot,
      slotWallets(slot, tally.wallets, input.mnemonic).map((w) => lower(w.address)),
    );
  }
  const payers = [...walletsOf.values()].flat();

  const outflows = new Map<string, Outflow>();
  const recipients = new Set<Address>();
  if (payers.length > 0 && fromBlock <= toBlock) {
    for await (const page of logPages(client, {
      address: token,
      event: TRANSFER_EVENT,
      args: { from: payers },
      fromBlock,
      toBlock,
    })) {
      for (const log of page.logs) {
        const from = lower(log.args.from ?? "0x");
        const value = log.args.value ?? 0n;
        const out = outflows.get(from) ?? { transfers: 0, amount: 0n, largest: 0n };
        out.transfers += 1;
        out.amount += value;
        if (value > out.largest) out.largest = value;
        outflows.set(from, out);
        recipients.add(lower(log.args.to ?? "0x"));
      }
    }
  }
  const scan = await scanSettlements(client, {
    payers,
    paid: [],
    fromBlock,
    toBlock,
    token,
    permit2: job.spec.permit2Allowance,
  });
  const splits = await payoutSplits(client, [...recipients]);
  const payees = [
    ...new Set([
      ...job.payees.map(lower),
      ...recipients,
      ...[...splits.values()].flatMap((s) => s.payees.map(lower)),
    ]),
  ];
  const gained = sum((await usdcNetTransfers(client, payees, fromBlock, toBlock, token)).values());
  const splitterBalances = await usdcBalances(client, [...splits.keys()] as Address[], toBlock, token);

  const lost = sum([...outflows.values()].map((o) => o.amount));
  const claimed = BigInt(metrics.counter(METRIC.charged));
  const paid = sum([...slots.values()].map((s) => BigInt(s.paid)));
  const settled = [...outflows.values()].reduce((n, o) => n + o.transfers, 0);

  const perSlot = [...slots].map(([slot, tally]) => {
    const wallets = walletsOf.get(slot) ?? [];
    const out = wallets.map((w) => outflows.get(w));
    return {
      slot,
      tally,
      transfers: out.reduce((n, o) => n + (o?.transfers ?? 0), 0),
      amount: sum(out.map((o) => o?.amount ?? 0n)),
    };
  });
  const chargedWrong = perSlot.filter((s) => s.amount !== BigInt(s.tally.charged));
  const countWrong = perSlot.filter((s) => s.transfers !== s.tally.paid);
  const shared = perSlot.filter((s) => s.tally.workers > 1);

  const policy = job.spec.policy;
  const maxPerPayment = BigInt(policy.maxPerPayment ?? DEFAULT_MAX_PER_PAYMENT);
  const budget = policy.budgetPerRun === undefined ? undefined : BigInt(policy.budgetPerRun);
  const violations: string[] = [];
  for (const [payer, out] of outflows) {
    if (out.largest > maxPerPayment)
      violations.push(`${payer} paid ${out.largest} at once > max ${maxPerPayment}`);
    if (budget !== undefined && out.amount > budget)
      violations.push(`${payer} paid ${out.amount} > budget ${budget}`);
  }
  const overBudget = metrics.counter(METRIC.overBudget);
  if (overBudget > 0)
    violations.push(`${plural(overBudget, "agent")} held spent plus live signatures over the budget`);
  const setupFailed = metrics.counter(METRIC.setupFailed);
  const overSigned = metrics.counter(METRIC.overSigned);
  const channelPaid = metrics.counter(METRIC.channelPaid);
  const perWorker = `per worker slot (${plural(slots.size, "slot")})`;
  const list = (rows: typeof perSlot, say: (row: (typeof perSlot)[number]) => string) =>
    rows.slice(0, 5).map(say).join("; ") + (rows.length > 5 ? `; and ${rows.length - 5} more` : "");

  const invariants: InvariantResult[] = [
    {
      name: "every worker set up its wallets and paid from wallets of its own",
      ok: setupFailed === 0 && shared.length === 0 && slots.size > 0,
      detail:
        slots.size === 0
          ? "the report names no worker slot: no worker got as far as funding its wallets"
          : setupFailed > 0
            ? `${plural(setupFailed, "virtual user")} found its worker's set-up failed (see the errors)`
            : shared.length > 0
              ? `${list(shared, (s) => `slot ${s.slot} was drawn by ${s.tally.workers} workers`)}: their wallets were shared`
              : `${plural(slots.size, "worker slot")}, ${plural(payers.length, "wallet")}`,
    },
    {
      name: "money in equals money out",
      ok: lost === gained && gained === claimed,
      detail: `payers lost ${lost}, payees gained ${gained}, paid responses claim ${claimed} (USDC base units)`,
    },
    {
      name: "each payer was charged exactly what its paid responses claim",
      ok: chargedWrong.length === 0,
      detail:
        chargedWrong.length === 0
          ? `balanced ${perWorker}`
          : `mismatch: ${list(chargedWrong, (s) => `slot ${s.slot}'s wallets lost ${s.amount}, its paid responses claim ${s.tally.charged}`)}`,
    },
    {
      name: "no payment charged more than its payer signed for",
      ok: overSigned === 0,
      detail: `${plural(overSigned, "paid response")} claiming more than the signed maximum`,
    },
    {
      name: "no authorization settled twice",
      ok: scan.duplicates === 0,
      detail: `${plural(scan.settlements, "settlement")}, ${plural(scan.duplicates, "duplicate")}`,
    },
    {
      name: "every paid response matches exactly one settlement",
      ok: countWrong.length === 0 && Number(paid) === settled && channelPaid === 0,
      detail:
        channelPaid > 0
          ? `${plural(channelPaid, "channel payment")}: a channel's vouchers settle in its claims after the run, which an Artillery run does not make; run channel scenarios in process`
          : `${plural(Number(paid), "paid response")}, ${plural(settled, "settlement")} from the workers' wallets${countWrong.length === 0 ? "" : `; ${list(countWrong, (s) => `slot ${s.slot}: ${s.tally.paid} paid, ${s.transfers} settled`)}`}`,
    },
    {
      name: "no agent exceeded its policy",
      ok: violations.length === 0,
      detail:
        violations.length === 0
          ? `${plural(outflows.size, "paying wallet")} within maxPerPayment${budget === undefined ? "" : " and budgetPerRun"} on chain`
          : violations.slice(0, 5).join("; "),
    },
    ...splitterInvariant(splits, splitterBalances),
  ];
  return {
    invariants,
    chain: {
      startBlock: Number(fromBlock - 1n),
      endBlock: Number(toBlock),
      settlements: scan.settlements,
      settlementTransactions: scan.transactions,
      gasUsed: scan.gasUsed.toString(),
    },
    wallets: payers.length,
  };
}
