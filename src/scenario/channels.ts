import type { Address, Chain, Client, Hex, Transport } from "viem";
import { parseAbiItem } from "viem";
import { multicall } from "viem/actions";
import type { Agent } from "../agents/index.ts";
import { USDC_ADDRESS, x402BatchSettlementAbi } from "../chain/index.ts";
import {
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  X402_BATCH_SETTLEMENT_ADDRESS,
} from "../protocol/batch-settlement.ts";
import { logPages, TRANSFER_EVENT } from "./chain-scan.ts";
import type { AfterLoadContext } from "./define.ts";
import { lower, type PaidRecord, plural, sum } from "./invariants.ts";
import type { InvariantResult } from "./report.ts";

/**
 * A payment through a channel (`batch-settlement`): the payer's USDC moves at the deposit and the refund,
 * the receiver's when the channel manager claims and settles, and no transfer stands for the request.
 */
export const isChannelPath = (path: string | undefined): boolean =>
  path?.startsWith("batch-settlement/") === true;

const channelCreated = parseAbiItem(
  "event ChannelCreated(bytes32 indexed channelId, (address payer, address payerAuthorizer, address receiver, address receiverAuthorizer, address token, uint40 withdrawDelay, bytes32 salt) config)",
);
const deposited = parseAbiItem(
  "event Deposited(bytes32 indexed channelId, address indexed sender, uint128 amount, uint128 newBalance)",
);
const claimed = parseAbiItem(
  "event Claimed(bytes32 indexed channelId, address indexed sender, uint128 claimAmount, uint128 newTotalClaimed)",
);
const refunded = parseAbiItem(
  "event Refunded(bytes32 indexed channelId, address indexed sender, uint128 amount)",
);
const withdrawFinalized = parseAbiItem(
  "event WithdrawFinalized(bytes32 indexed channelId, address indexed sender, uint128 amount)",
);
const settled = parseAbiItem(
  "event Settled(address indexed receiver, address indexed token, address indexed sender, uint128 amount)",
);

/** A channel of the run: whose it is and who it pays. */
export type RunChannel = { channelId: Hex; payer: Address; receiver: Address };

/** One channel's money over the run, from the batch contract's events and its `channels(id)` state. */
export type ChannelFlows = RunChannel & {
  deposited: bigint;
  claimed: bigint;
  refunded: bigint;
  withdrawn: bigint;
  /** `balance − totalClaimed` before the run's first block and at its last: what the payer could still get back. */
  availableBefore: bigint;
  availableAfter: bigint;
};

/** What the run's channels did on chain, as the channel invariants need it. */
export type ChannelScan = {
  channels: ChannelFlows[];
  /** Per payer (lowercase): USDC it sent into channels (deposits), and USDC the batch contract sent back. */
  payerOut: Map<string, bigint>;
  payerBack: Map<string, bigint>;
  /** Per receiver of the run's channels (lowercase): `Settled` amounts, and USDC the batch contract sent it. */
  settled: Map<string, bigint>;
  received: Map<string, bigint>;
  /**
   * The deposits' own token logs, by `payer:transaction` (lowercase) with how many: an ERC-3009 deposit
   * consumes an authorization and a Permit2 one moves the payer's USDC, which the per-request settlement
   * matching must not take for payments.
   */
  deposits: Map<string, number>;
};

const add = (map: Map<string, bigint>, key: string, amount: bigint) =>
  map.set(key, (map.get(key) ?? 0n) + amount);

export type ChannelScanOptions = {
  /** The run's agents: only their channels count. */
  payers: readonly Address[];
  /** Channels the agents know of: a channel created before the run shows no `ChannelCreated` in it. */
  known?: readonly RunChannel[];
  fromBlock: bigint;
  toBlock: bigint;
  token?: Address;
};

/**
 * Reads what the run's channels did: the run's channels are those the batch contract created for one of
 * its payers in the run, and those the agents know of. Logs are read a page at a time; only per-channel
 * and per-address sums are kept.
 */
export async function scanChannels(
  client: Client<Transport, Chain | undefined>,
  { payers, known = [], fromBlock, toBlock, token = USDC_ADDRESS }: ChannelScanOptions,
): Promise<ChannelScan> {
  const batch = X402_BATCH_SETTLEMENT_ADDRESS;
  const payerSet = new Set(payers.map(lower));
  const scan: ChannelScan = {
    channels: [],
    payerOut: new Map(),
    payerBack: new Map(),
    settled: new Map(),
    received: new Map(),
    deposits: new Map(),
  };
  if (payers.length === 0 || fromBlock > toBlock) return scan;
  const range = { fromBlock, toBlock };

  const channels = new Map<string, ChannelFlows>();
  const created = new Set<string>();
  const track = (channel: RunChannel) => {
    const id = lower(channel.channelId);
    if (!channels.has(id) && payerSet.has(lower(channel.payer))) {
      channels.set(id, {
        ...channel,
        deposited: 0n,
        claimed: 0n,
        refunded: 0n,
        withdrawn: 0n,
        availableBefore: 0n,
        availableAfter: 0n,
      });
    }
  };
  for (const channel of known) track(channel);
  for await (const { logs } of logPages(client, { address: batch, event: channelCreated, ...range })) {
    for (const { args } of logs) {
      if (!args.channelId || !args.config) continue;
      created.add(lower(args.channelId));
      track({ channelId: args.channelId, payer: args.config.payer, receiver: args.config.receiver });
    }
  }

  // The payers' USDC into the channels: to the batch contract (Permit2) or its ERC-3009 collector.
  for await (const { logs } of logPages(client, {
    address: token,
    event: TRANSFER_EVENT,
    args: { from: [...payerSet] as Address[], to: [batch, ERC3009_DEPOSIT_COLLECTOR_ADDRESS] },
    ...range,
  })) {
    for (const log of logs) {
      const payer = lower(log.args.from ?? "0x");
      add(scan.payerOut, payer, log.args.value ?? 0n);
      const key = `${payer}:${lower(log.transactionHash)}`;
      scan.deposits.set(key, (scan.deposits.get(key) ?? 0) + 1);
    }
  }
  const receivers = new Set([...channels.values()].map((c) => lower(c.receiver)));
  // Out of the batch contract: refunds and withdrawals to payers, settlements to receivers.
  for await (const { logs } of logPages(client, {
    address: token,
    event: TRANSFER_EVENT,
    args: { from: batch },
    ...range,
  })) {
    for (const log of logs) {
      const to = lower(log.args.to ?? "0x");
      if (payerSet.has(to)) add(scan.payerBack, to, log.args.value ?? 0n);
      if (receivers.has(to)) add(scan.received, to, log.args.value ?? 0n);
    }
  }
  if (receivers.size > 0) {
    for await (const { logs } of logPages(client, {
      address: batch,
      event: settled,
      args: { receiver: [...receivers] as Address[], token },
      ...range,
    })) {
      for (const { args } of logs) add(scan.settled, lower(args.receiver ?? "0x"), args.amount ?? 0n);
    }
  }

  const ids = [...channels.keys()] as Hex[];
  if (ids.length === 0) return scan;
  const flows = [
    [deposited, "deposited"],
    [claimed, "claimed"],
    [refunded, "refunded"],
    [withdrawFinalized, "withdrawn"],
  ] as const;
  for (const [event, field] of flows) {
    for await (const { logs } of logPages(client, {
      address: batch,
      event,
      args: { channelId: ids },
      ...range,
    })) {
      for (const { args } of logs) {
        const channel = channels.get(lower(args.channelId ?? "0x"));
        // `Claimed` names its amount `claimAmount`; the others, `amount`.
        const { amount, claimAmount } = args as { amount?: bigint; claimAmount?: bigint };
        if (channel) channel[field] += claimAmount ?? amount ?? 0n;
      }
    }
  }
  const available = async (wanted: Hex[], blockNumber: bigint) => {
    const states = await multicall(client, {
      blockNumber,
      allowFailure: false,
      contracts: wanted.map(
        (id) =>
          ({ address: batch, abi: x402BatchSettlementAbi, functionName: "channels", args: [id] }) as const,
      ),
    });
    return states.map(([balance, totalClaimed]) => balance - totalClaimed);
  };
  // A channel created in the run held nothing before it; only older ones need the state at its start,
  // which a pruned chain may no longer hold.
  const older = ids.filter((id) => !created.has(id));
  if (older.length > 0) {
    (await available(older, fromBlock - 1n)).forEach((value, i) => {
      const channel = channels.get(older[i] as string);
      if (channel) channel.availableBefore = value;
    });
  }
  (await available(ids, toBlock)).forEach((value, i) => {
    const channel = channels.get(ids[i] as string);
    if (channel) channel.availableAfter = value;
  });
  scan.channels = [...channels.values()];
  return scan;
}

/** The channels each agent knows of, for {@link scanChannels}: those created before the run included. */
export function agentChannels(agents: readonly Agent[]): RunChannel[] {
  return agents.flatMap((agent) =>
    agent.channels.map((c) => ({
      channelId: c.channelId,
      payer: c.config.payer,
      receiver: c.config.receiver,
    })),
  );
}

const listed = (items: string[]) =>
  `${items.slice(0, 5).join("; ")}${items.length > 5 ? `; and ${items.length - 5} more` : ""}`;

/**
 * The channel invariants: what the vouchers charged is what the receivers claimed on chain and were settled,
 * per payer as in total, and every deposit is accounted for, on the contract's books and in the payers'
 * USDC. `paid` is the run's paid responses on channel paths.
 */
export function channelInvariants(input: {
  paid: Iterable<PaidRecord>;
  scan: ChannelScan;
}): InvariantResult[] {
  const { scan } = input;
  let vouchers = 0;
  const charged = new Map<string, bigint>();
  for (const p of input.paid) {
    vouchers += 1;
    add(charged, lower(p.payer), p.amount);
  }
  const totalCharged = sum(charged.values());
  const claimedBy = new Map<string, bigint>();
  const keptBy = new Map<string, bigint>();
  for (const c of scan.channels) {
    add(claimedBy, lower(c.payer), c.claimed);
    add(keptBy, lower(c.payer), c.deposited - c.refunded - c.withdrawn);
  }
  const totalClaimed = sum(claimedBy.values());
  const totalSettled = sum(scan.settled.values());
  const totalReceived = sum(scan.received.values());

  const payers = [...new Set([...charged.keys(), ...claimedBy.keys()])];
  const claimMismatches = payers.filter((p) => (charged.get(p) ?? 0n) !== (claimedBy.get(p) ?? 0n));
  const unaccounted = scan.channels.filter(
    (c) => c.deposited !== c.claimed + c.refunded + c.withdrawn + c.availableAfter - c.availableBefore,
  );
  const flowPayers = [...new Set([...keptBy.keys(), ...scan.payerOut.keys(), ...scan.payerBack.keys()])];
  const lostOf = (p: string) => (scan.payerOut.get(p) ?? 0n) - (scan.payerBack.get(p) ?? 0n);
  const flowMismatches = flowPayers.filter((p) => lostOf(p) !== (keptBy.get(p) ?? 0n));
  const total = (field: "deposited" | "claimed" | "refunded" | "withdrawn" | "availableAfter") =>
    sum(scan.channels.map((c) => c[field]));

  return [
    {
      name: "channel vouchers equal claims equal settlements",
      ok: totalCharged === totalClaimed && totalClaimed === totalSettled && totalSettled === totalReceived,
      detail: `${plural(vouchers, "voucher payment")} charged ${totalCharged}, ${plural(scan.channels.length, "channel")} claimed ${totalClaimed}, settled ${totalSettled}, receivers got ${totalReceived} (USDC base units)`,
    },
    {
      name: "each payer's channels were claimed exactly what its vouchers charged",
      ok: claimMismatches.length === 0,
      detail:
        claimMismatches.length === 0
          ? `${plural(payers.length, "payer")} balanced`
          : `mismatch: ${listed(claimMismatches.map((p) => `${p} charged ${charged.get(p) ?? 0n}, claimed ${claimedBy.get(p) ?? 0n}`))}`,
    },
    {
      // The contract's books: a deposit is claimed, refunded, withdrawn or still in the channel.
      name: "every channel deposit is accounted for",
      ok: unaccounted.length === 0,
      detail:
        unaccounted.length === 0
          ? `deposited ${total("deposited")} = claimed ${total("claimed")} + refunded ${total("refunded")} + withdrawn ${total("withdrawn")} + left ${total("availableAfter")} (less ${sum(scan.channels.map((c) => c.availableBefore))} held before the run)`
          : `unaccounted: ${listed(unaccounted.map((c) => `${c.channelId} deposited ${c.deposited}, claimed ${c.claimed}, refunded ${c.refunded}, withdrawn ${c.withdrawn}, left ${c.availableAfter - c.availableBefore}`))}`,
    },
    {
      // The payers' USDC: what left for the channels, less what came back, is what the books say they kept.
      name: "each payer lost to its channels exactly what they kept",
      ok: flowMismatches.length === 0,
      detail:
        flowMismatches.length === 0
          ? `${plural(flowPayers.length, "payer")} sent ${sum(scan.payerOut.values())}, got back ${sum(scan.payerBack.values())}`
          : `mismatch: ${listed(flowMismatches.map((p) => `${p} lost ${lostOf(p)}, its channels kept ${keptBy.get(p) ?? 0n}`))}`,
    },
  ];
}

/**
 * Closes the run's channels as its payers and receiver would at the end of a day: every agent asks for its
 * refund, then the channel manager claims every charge left and settles it all to the receivers (a refund
 * claims its channel's charges in the same transaction, so settling comes last). Against the user's server
 * only the refunds are asked for: its manager claims and settles on its own schedule.
 */
export async function settleChannels({ stack, devnet, agents }: AfterLoadContext): Promise<void> {
  const refunds = (
    await Promise.all(agents.map((agent) => agent.refundChannels(undefined, devnet.client)))
  ).flat();
  await stack?.server.channels?.claimAndSettle();
  const failed = refunds.filter((r) => r.outcome === "failed");
  if (failed.length > 0) {
    throw new Error(
      `${plural(failed.length, "channel refund")} failed: ${listed(failed.map((r) => `${r.channelId} ${r.errorCode ?? "no reason"}`))}`,
    );
  }
}
