import type { Address, Hash } from "viem";
import { describe, expect, it } from "vitest";
import {
  type BalanceSnapshot,
  moneyInvariants,
  type PaidRecord,
  type SettlementScan,
} from "../../src/scenario/index.ts";
import { PaidLog } from "../../src/scenario/invariants.ts";

const PAYER: Address = "0x00000000000000000000000000000000000a0001";
const OTHER_PAYER: Address = "0x00000000000000000000000000000000000a0002";
const PAYEE: Address = "0x00000000000000000000000000000000000b0b01";
const OTHER_PAYEE: Address = "0x00000000000000000000000000000000000b0b02";
const SPLITTER: Address = "0x00000000000000000000000000000000000c0001";
const TX = `0x${"1".repeat(64)}` as Hash;

const snapshot = (entries: [Address, bigint][]): BalanceSnapshot =>
  new Map(entries.map(([address, balance]) => [address.toLowerCase(), balance]));

const scan = (fields: Partial<SettlementScan>): SettlementScan => ({
  settlements: 0,
  duplicates: 0,
  transactions: 0,
  gasUsed: 0n,
  paidWithoutSettlement: 0,
  settlementsWithoutPaid: 0,
  ...fields,
});

const byName = (results: ReturnType<typeof moneyInvariants>) =>
  Object.fromEntries(results.map(({ name, ...rest }) => [name, rest]));

describe("moneyInvariants", () => {
  it("holds for one payment, and says so in the singular", () => {
    const paid: PaidRecord[] = [{ payer: PAYER, payTo: PAYEE, amount: 1_000n, transaction: TX }];
    const results = moneyInvariants({
      payers: [PAYER],
      payees: [PAYEE],
      before: snapshot([
        [PAYER, 5_000n],
        [PAYEE, 0n],
      ]),
      after: snapshot([
        [PAYER, 4_000n],
        [PAYEE, 1_000n],
      ]),
      paid,
      settlements: scan({ settlements: 1, transactions: 1, gasUsed: 50_000n }),
    });
    expect(byName(results)).toEqual({
      "money in equals money out": {
        ok: true,
        detail: "payers lost 1000, payees gained 1000, paid responses claim 1000 (USDC base units)",
      },
      "each payee received exactly its share of what its routes were paid": {
        ok: true,
        detail: "1 payee balanced",
      },
      "each payer was charged exactly what its paid responses claim": {
        ok: true,
        detail: "1 payer balanced",
      },
      "no payment charged more than its payer signed for": {
        ok: true,
        detail: "0 paid responses claiming more than the signed maximum",
      },
      "no authorization settled twice": { ok: true, detail: "1 settlement, 0 duplicates" },
      "every paid response matches exactly one settlement": {
        ok: true,
        detail:
          "1 paid response, 1 settlement, 0 without a settlement, 0 settlements without a paid response",
      },
    });
  });

  it("holds a metered payer to what its receipts claim and to what it signed; a zero charge needs no settlement", () => {
    const metered = (amount: bigint, transaction: Hash | undefined): PaidRecord => ({
      payer: PAYER,
      payTo: PAYEE,
      amount,
      signed: 2_000n,
      transaction,
    });
    const run = (paid: PaidRecord[], lost: bigint) =>
      byName(
        moneyInvariants({
          payers: [PAYER],
          payees: [PAYEE],
          before: snapshot([
            [PAYER, 10_000n],
            [PAYEE, 0n],
          ]),
          after: snapshot([
            [PAYER, 10_000n - lost],
            [PAYEE, lost],
          ]),
          paid,
          settlements: scan({ settlements: 1 }),
        }),
      );
    const honest = run([metered(700n, TX), metered(0n, undefined)], 700n);
    expect(honest["each payer was charged exactly what its paid responses claim"]?.ok).toBe(true);
    expect(honest["no payment charged more than its payer signed for"]?.ok).toBe(true);
    // A server whose receipt says 700 while the chain took 1,500 from the payer.
    const lying = run([metered(700n, TX)], 1_500n);
    expect(lying["each payer was charged exactly what its paid responses claim"]).toEqual({
      ok: false,
      detail: `mismatch: ${PAYER.toLowerCase()} lost 1500, paid responses claim 700`,
    });
    expect(run([metered(2_001n, TX)], 2_001n)["no payment charged more than its payer signed for"]).toEqual({
      ok: false,
      detail: "1 paid response claiming more than the signed maximum",
    });
  });

  it("fails on a duplicate, an unmatched response and an extra settlement, counting in the plural", () => {
    const paid: PaidRecord[] = [
      { payer: PAYER, payTo: PAYEE, amount: 1_000n, transaction: TX },
      { payer: OTHER_PAYER, payTo: OTHER_PAYEE, amount: 1_000n, transaction: undefined },
    ];
    const results = byName(
      moneyInvariants({
        payers: [PAYER, OTHER_PAYER],
        payees: [PAYEE, OTHER_PAYEE],
        before: snapshot([
          [PAYER, 5_000n],
          [OTHER_PAYER, 5_000n],
        ]),
        after: snapshot([
          [PAYER, 4_000n],
          [OTHER_PAYER, 4_000n],
          [PAYEE, 1_000n],
          [OTHER_PAYEE, 1_000n],
        ]),
        paid,
        settlements: scan({
          settlements: 3,
          duplicates: 1,
          paidWithoutSettlement: 1,
          settlementsWithoutPaid: 2,
        }),
      }),
    );
    expect(results["each payee received exactly its share of what its routes were paid"]).toEqual({
      ok: true,
      detail: "2 payees balanced",
    });
    expect(results["no authorization settled twice"]).toEqual({
      ok: false,
      detail: "3 settlements, 1 duplicate",
    });
    expect(results["every paid response matches exactly one settlement"]).toEqual({
      ok: false,
      detail:
        "2 paid responses, 3 settlements, 1 without a settlement, 2 settlements without a paid response",
    });
  });

  it("owes a splitter's receipts to its payees by share, and names a payee short of its share", () => {
    const split = { payees: [PAYEE, OTHER_PAYEE], shares: [7_000, 3_000] };
    const results = byName(
      moneyInvariants({
        payers: [PAYER],
        payees: [SPLITTER, PAYEE, OTHER_PAYEE],
        before: snapshot([[PAYER, 10_000n]]),
        after: snapshot([
          [PAYER, 9_000n],
          [PAYEE, 800n],
          [OTHER_PAYEE, 200n],
        ]),
        paid: [{ payer: PAYER, payTo: SPLITTER, amount: 1_000n, transaction: TX }],
        settlements: scan({ settlements: 1, settlementsWithoutPaid: 0 }),
        splits: new Map([[SPLITTER.toLowerCase(), split]]),
      }),
    );
    expect(results["money in equals money out"]?.ok).toBe(true);
    expect(results["each payee received exactly its share of what its routes were paid"]).toEqual({
      ok: false,
      detail: `mismatch: ${PAYEE.toLowerCase()} received 800, owed 700; ${OTHER_PAYEE.toLowerCase()} received 200, owed 300`,
    });
  });
});

describe("PaidLog", () => {
  it("gives back every paid response as it was recorded, a transaction in any spelling or none", () => {
    const log = new PaidLog();
    const paid: PaidRecord[] = [
      { payer: PAYER, payTo: PAYEE, amount: 1_000n, transaction: TX },
      { payer: OTHER_PAYER, payTo: PAYEE, amount: 1_000n, transaction: TX },
      { payer: PAYER, payTo: OTHER_PAYEE, amount: 50_000n, transaction: undefined },
      // A server of the user's may name a transaction in capitals, or one that is no hash at all.
      { payer: PAYER, payTo: PAYEE, amount: 1_000n, transaction: `0x${"A".repeat(64)}` as Hash },
      { payer: PAYER, payTo: PAYEE, amount: 1_000n, transaction: "0x1234" as Hash },
    ];
    for (const record of paid) log.add(record);
    expect(log.size).toBe(paid.length);
    expect([...log]).toStrictEqual(paid);
    expect(log.payTos()).toEqual([PAYEE, OTHER_PAYEE]);
  });

  it("feeds the money invariants as the records themselves would, for a run of many responses", () => {
    const log = new PaidLog();
    const transaction = (i: number) => `0x${i.toString(16).padStart(64, "0")}` as Hash;
    for (let i = 0; i < 3_000; i++) {
      log.add({
        payer: i % 2 ? PAYER : OTHER_PAYER,
        payTo: PAYEE,
        amount: 1_000n,
        transaction: transaction(i),
      });
    }
    const input = {
      payers: [PAYER, OTHER_PAYER],
      payees: [PAYEE],
      before: snapshot([
        [PAYER, 5_000_000n],
        [OTHER_PAYER, 5_000_000n],
      ]),
      after: snapshot([
        [PAYER, 3_500_000n],
        [OTHER_PAYER, 3_500_000n],
        [PAYEE, 3_000_000n],
      ]),
      settlements: scan({ settlements: 3_000, transactions: 3_000 }),
    };
    expect(moneyInvariants({ ...input, paid: log })).toEqual(moneyInvariants({ ...input, paid: [...log] }));
    expect(byName(moneyInvariants({ ...input, paid: log }))["money in equals money out"]).toEqual({
      ok: true,
      detail: "payers lost 3000000, payees gained 3000000, paid responses claim 3000000 (USDC base units)",
    });
  });
});
