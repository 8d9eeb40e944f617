import type { Address, Hex } from "viem";
import { describe, expect, it } from "vitest";
import {
  type BalanceSnapshot,
  type ChannelFlows,
  type ChannelScan,
  channelInvariants,
  loadScenario,
  moneyInvariants,
  type PaidRecord,
  runScenario,
  type SettlementScan,
} from "../../src/scenario/index.ts";

const PAYER: Address = "0x00000000000000000000000000000000000a0001";
const OTHER_PAYER: Address = "0x00000000000000000000000000000000000a0002";
const RECEIVER: Address = "0x00000000000000000000000000000000000b0b01";
const CHANNEL = `0x${"c1".repeat(32)}` as Hex;
const OTHER_CHANNEL = `0x${"c2".repeat(32)}` as Hex;

const voucher = (payer: Address, amount = 1_000n): PaidRecord => ({
  payer,
  payTo: RECEIVER,
  amount,
  transaction: undefined,
});

const channel = (fields: Partial<ChannelFlows> = {}): ChannelFlows => ({
  channelId: CHANNEL,
  payer: PAYER,
  receiver: RECEIVER,
  deposited: 10_000n,
  claimed: 3_000n,
  refunded: 7_000n,
  withdrawn: 0n,
  availableBefore: 0n,
  availableAfter: 0n,
  ...fields,
});

const lower = (address: Address) => address.toLowerCase();

/** Three vouchers of PAYER's, claimed, settled and the rest refunded: every figure agrees. */
const honestScan = (fields: Partial<ChannelScan> = {}): ChannelScan => ({
  channels: [channel()],
  payerOut: new Map([[lower(PAYER), 10_000n]]),
  payerBack: new Map([[lower(PAYER), 7_000n]]),
  settled: new Map([[lower(RECEIVER), 3_000n]]),
  received: new Map([[lower(RECEIVER), 3_000n]]),
  deposits: new Map(),
  ...fields,
});

const byName = (results: ReturnType<typeof channelInvariants>) =>
  Object.fromEntries(results.map(({ name, ...rest }) => [name, rest]));

const threeVouchers = [voucher(PAYER), voucher(PAYER), voucher(PAYER)];

describe("channelInvariants", () => {
  it("holds when vouchers, claims, settlements and deposits agree, and says so", () => {
    expect(byName(channelInvariants({ paid: threeVouchers, scan: honestScan() }))).toEqual({
      "channel vouchers equal claims equal settlements": {
        ok: true,
        detail:
          "3 voucher payments charged 3000, 1 channel claimed 3000, settled 3000, receivers got 3000 (USDC base units)",
      },
      "each payer's channels were claimed exactly what its vouchers charged": {
        ok: true,
        detail: "1 payer balanced",
      },
      "every channel deposit is accounted for": {
        ok: true,
        detail:
          "deposited 10000 = claimed 3000 + refunded 7000 + withdrawn 0 + left 0 (less 0 held before the run)",
      },
      "each payer lost to its channels exactly what they kept": {
        ok: true,
        detail: "1 payer sent 10000, got back 7000",
      },
    });
  });

  it("fails when the receiver claimed more than the vouchers charged, in total and per payer", () => {
    const results = byName(
      channelInvariants({
        // A fourth voucher the server answered with an error, then claimed anyway.
        paid: threeVouchers,
        scan: honestScan({
          channels: [channel({ claimed: 4_000n, refunded: 6_000n })],
          payerBack: new Map([[lower(PAYER), 6_000n]]),
          settled: new Map([[lower(RECEIVER), 4_000n]]),
          received: new Map([[lower(RECEIVER), 4_000n]]),
        }),
      }),
    );
    expect(results["channel vouchers equal claims equal settlements"]).toMatchObject({
      ok: false,
      detail: expect.stringContaining("charged 3000, 1 channel claimed 4000"),
    });
    expect(results["each payer's channels were claimed exactly what its vouchers charged"]).toEqual({
      ok: false,
      detail: `mismatch: ${lower(PAYER)} charged 3000, claimed 4000`,
    });
    // The books still balance: the contract paid out what it claimed.
    expect(results["every channel deposit is accounted for"]?.ok).toBe(true);
  });

  it("fails when claims were not settled to the receiver", () => {
    const results = byName(
      channelInvariants({
        paid: threeVouchers,
        scan: honestScan({ settled: new Map(), received: new Map() }),
      }),
    );
    expect(results["channel vouchers equal claims equal settlements"]).toEqual({
      ok: false,
      detail:
        "3 voucher payments charged 3000, 1 channel claimed 3000, settled 0, receivers got 0 (USDC base units)",
    });
  });

  it("catches a payer whose vouchers were claimed from another payer's channel", () => {
    const results = byName(
      channelInvariants({
        paid: [voucher(PAYER), voucher(OTHER_PAYER)],
        scan: honestScan({
          channels: [
            channel({ claimed: 2_000n, refunded: 8_000n }),
            channel({
              channelId: OTHER_CHANNEL,
              payer: OTHER_PAYER,
              deposited: 0n,
              claimed: 0n,
              refunded: 0n,
            }),
          ],
          payerBack: new Map([[lower(PAYER), 8_000n]]),
          settled: new Map([[lower(RECEIVER), 2_000n]]),
          received: new Map([[lower(RECEIVER), 2_000n]]),
        }),
      }),
    );
    // The totals agree; only the per-payer view shows whose money paid for whose vouchers.
    expect(results["channel vouchers equal claims equal settlements"]?.ok).toBe(true);
    expect(results["each payer's channels were claimed exactly what its vouchers charged"]).toEqual({
      ok: false,
      detail: `mismatch: ${lower(PAYER)} charged 1000, claimed 2000; ${lower(OTHER_PAYER)} charged 1000, claimed 0`,
    });
  });

  it("fails on a deposit that is neither claimed, refunded, withdrawn nor left in its channel", () => {
    // 1,000 of the deposit vanished from the books: the contract says nothing is left.
    const results = byName(
      channelInvariants({
        paid: threeVouchers,
        scan: honestScan({
          channels: [channel({ refunded: 6_000n })],
          payerBack: new Map([[lower(PAYER), 6_000n]]),
        }),
      }),
    );
    expect(results["every channel deposit is accounted for"]).toEqual({
      ok: false,
      detail: `unaccounted: ${CHANNEL} deposited 10000, claimed 3000, refunded 6000, withdrawn 0, left 0`,
    });
    // What is left in a channel, or was there before the run, is accounted for.
    const open = byName(
      channelInvariants({
        paid: threeVouchers,
        scan: honestScan({
          channels: [channel({ refunded: 6_000n, availableBefore: 500n, availableAfter: 1_500n })],
          payerBack: new Map([[lower(PAYER), 6_000n]]),
        }),
      }),
    );
    expect(open["every channel deposit is accounted for"]?.ok).toBe(true);
  });

  it("fails when a payer's USDC moved otherwise than its channels' books say", () => {
    // The refund event says 7,000 came back; the token moved 6,000 to the payer.
    const results = byName(
      channelInvariants({
        paid: threeVouchers,
        scan: honestScan({ payerBack: new Map([[lower(PAYER), 6_000n]]) }),
      }),
    );
    expect(results["each payer lost to its channels exactly what they kept"]).toEqual({
      ok: false,
      detail: `mismatch: ${lower(PAYER)} lost 4000, its channels kept 3000`,
    });
  });
});

describe("moneyInvariants with channel payments", () => {
  const snapshot = (entries: [Address, bigint][]): BalanceSnapshot =>
    new Map(entries.map(([address, balance]) => [address.toLowerCase(), balance]));
  const noSettlements: SettlementScan = {
    settlements: 0,
    duplicates: 0,
    transactions: 0,
    gasUsed: 0n,
    paidWithoutSettlement: 0,
    settlementsWithoutPaid: 0,
  };
  const run = (lost: Map<string, bigint>, received: Map<string, bigint>) =>
    Object.fromEntries(
      moneyInvariants({
        payers: [PAYER],
        payees: [RECEIVER],
        // The payer deposited 10,000, got 7,000 back; the receiver was settled 3,000.
        before: snapshot([
          [PAYER, 50_000n],
          [RECEIVER, 0n],
        ]),
        after: snapshot([
          [PAYER, 47_000n],
          [RECEIVER, 3_000n],
        ]),
        paid: [],
        settlements: noSettlements,
        channels: { lost, received },
      }).map(({ name, ...rest }) => [name, rest]),
    );

  it("leaves the channels' flows out of the per-request balances", () => {
    const results = run(new Map([[lower(PAYER), 3_000n]]), new Map([[lower(RECEIVER), 3_000n]]));
    expect(results["money in equals money out"]).toEqual({
      ok: true,
      detail:
        "payers lost 0, payees gained 0, paid responses claim 0 (USDC base units; channel payments apart)",
    });
    expect(results["each payer was charged exactly what its paid responses claim"]?.ok).toBe(true);
  });

  it("still catches money that moved outside the channels", () => {
    // The scan saw only 2,000 of the payer's 3,000 go to channels: 1,000 left it for no paid response.
    const results = run(new Map([[lower(PAYER), 2_000n]]), new Map([[lower(RECEIVER), 3_000n]]));
    expect(results["money in equals money out"]?.ok).toBe(false);
    expect(results["each payer was charged exactly what its paid responses claim"]).toEqual({
      ok: false,
      detail: `mismatch: ${lower(PAYER)} lost 1000, paid responses claim 0`,
    });
  });
});

describe("a channel run whose charges are never claimed", () => {
  it("fails the channel invariants on the chain, and keeps the deposits accounted for", async () => {
    const scenario = await loadScenario("channels");
    const report = await runScenario(
      { ...scenario, afterLoad: undefined, devnet: { profile: "instant" } },
      { agents: 4, durationMs: 1_000, progress: false },
    );
    const results = Object.fromEntries(report.invariants.map(({ name, ...rest }) => [name, rest]));
    const paid = report.outcomes.paid ?? 0;
    expect(paid).toBeGreaterThan(0);
    expect(results["channel vouchers equal claims equal settlements"]).toEqual({
      ok: false,
      detail: `${paid} voucher payments charged ${paid * 1_000}, 4 channels claimed 0, settled 0, receivers got 0 (USDC base units)`,
    });
    expect(results["each payer's channels were claimed exactly what its vouchers charged"]?.ok).toBe(false);
    // Nothing claimed, nothing refunded: every deposit is still in its channel, and the payers' USDC says so.
    expect(results["every channel deposit is accounted for"]).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^deposited (\d+) = claimed 0 \+ refunded 0 \+ withdrawn 0 \+ left \1 /),
    });
    expect(results["each payer lost to its channels exactly what they kept"]?.ok).toBe(true);
    expect(results["every channel was refunded down to its claims"]?.ok).toBe(false);
    // The per-request invariants are untouched by the channels: no paid response waits for a settlement.
    expect(results["every paid response matches exactly one settlement"]?.ok).toBe(true);
    expect(results["money in equals money out"]?.ok).toBe(true);
    expect(report.ok).toBe(false);
  });
});

describe("a run mixing Permit2 payments with Permit2-funded channels", () => {
  it("holds every invariant: a deposit's transfer is not taken for a payment without a response", async () => {
    const scenario = await loadScenario("channels");
    const report = await runScenario(
      {
        ...scenario,
        devnet: { profile: "instant" },
        agents: { ...scenario.agents, permit2Allowance: true },
        // Each agent pays by Permit2 per request and through its channel in turn: both show as the payer's
        // Transfers, and only the first kind stands for a paid response's settlement.
        target: ({ iteration }) =>
          iteration % 2 === 0 ? "/batch-settlement/evm/permit2" : "/exact/evm/permit2",
      },
      { agents: 4, durationMs: 1_000, progress: false },
    );
    expect(report.invariants.filter((i) => !i.ok)).toEqual([]);
    const settled = report.latencyByPath?.["exact/permit2"]?.count;
    expect(settled).toBeGreaterThan(0);
    expect(report.latencyByPath?.["batch-settlement/permit2"]?.count).toBeGreaterThan(0);
    expect(
      report.invariants.find((i) => i.name === "every paid response matches exactly one settlement"),
    ).toMatchObject({
      detail: `${settled} paid responses, ${settled} settlements, 0 without a settlement, 0 settlements without a paid response`,
    });
  });
});
