import { type Account, type Address, getAddress, type Hex, isAddressEqual } from "viem";
import { getBlock, readContract, waitForTransactionReceipt, writeContract } from "viem/actions";
import { X402_BATCH_SETTLEMENT_ADDRESS, x402BatchSettlementAbi } from "../chain/index.ts";
import {
  type BatchPayload,
  batchError,
  type ChannelConfig,
  channelIdOf,
  type Deposit,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  erc3009DepositNonce,
  erc3009DepositTypedData,
  MIN_WITHDRAW_DELAY,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  permit2DepositTypedData,
  voucherDigest,
} from "../protocol/batch-settlement.ts";
import {
  chainIdFromNetwork,
  domainFromRequirements,
  encodePaymentSignatureHeader,
  isUint256String,
  type Network,
  type PaymentRequired,
  type PaymentRequirements,
  randomNonce,
  recoverAddress,
  type SettleResponse,
} from "../protocol/index.ts";
import { type Challenge, challengeFromResponse, type Offer } from "./challenge.ts";
import type { PreparedRequest, ReadResponse } from "./http.ts";
import type { ChannelFunds, Claim, SignedPayment, SpendLedger } from "./ledger.ts";
import type { AgentPaymentMethod, DepositTypedData, PaymentPath, PaymentSigner } from "./payment-methods.ts";
import type { ChainClient } from "./reconcile.ts";
import { PolicyError } from "./refusal.ts";
import type { AgentResult, AgentTimings } from "./result.ts";

/** A payment channel as the agent sees it: `agent.channels`. Amounts are atomic units of the token. */
export type ChannelSummary = {
  channelId: Hex;
  config: ChannelConfig;
  network: Network;
  /** The last URL paid through it: where `refundChannels` asks for the refund. */
  url: string | undefined;
  /** The channel's balance on chain as far as the agent knows (its deposits, less refunds). */
  balance: bigint;
  /** What the server has charged in total: the cumulative amount its next voucher starts from. */
  charged: bigint;
  /**
   * The last voucher the server accepted: the receiver may claim up to it. (One it refused may still be
   * claimed too, within the money the books hold for the channel.)
   */
  signedMaxClaimable: bigint;
  /** Deposits the server accepted from this agent. */
  deposited: bigint;
  refunded: bigint;
  /** Money of the channel still reserved in the agent's budgets (neither charged nor refunded). */
  held: bigint;
};

/** How `agent.refundChannels` ended for one channel. */
export type ChannelRefund = {
  channelId: Hex;
  /** `refunded`: the server refunded on chain; `failed`: it did not; `empty`: nothing was left to refund. */
  outcome: "refunded" | "failed" | "empty";
  /** What came back to the payer. */
  refunded: bigint;
  transaction?: Hex;
  errorCode?: string;
};

/** A timed withdrawal the agent started or finished on chain (`agent.initiateWithdraw` / `finalizeWithdraw`). */
export type ChannelWithdrawal = {
  channelId: Hex;
  /** Initiated: what was asked for. Finalized: what came back to the payer. */
  amount: bigint;
  transaction: Hex;
  /** Unix seconds from which `finalizeWithdraw` may pay out (initiated only). */
  finalizeAfter?: bigint;
};

/** What the agent's channels need of it: its keys, books, channel limits and HTTP. */
export type ChannelDeps = {
  signer: PaymentSigner & {
    address: Address;
    /** An account of the payer that can send transactions (withdrawals), when the agent has its key. */
    readonly payer: Account | undefined;
  };
  ledger: SpendLedger;
  /** The largest deposit the policy allows. */
  maxDeposit: bigint;
  /** A first deposit covers this many payments at least (the official client's `depositMultiplier`). */
  depositMultiplier: bigint;
  /** The config salt of every channel this agent opens; drawn at the first channel when absent. */
  salt: Hex | undefined;
  /** The policy's host check, for refund requests to a URL the caller names. */
  checkHost(url: URL): void;
  send(url: URL, request: PreparedRequest, headers: Record<string, string>): Promise<ReadResponse>;
  verdict(response: ReadResponse): { receipt: SettleResponse | undefined; errorCode: string | undefined };
  prepare(): Promise<PreparedRequest>;
  /** The code an `error` result names for a request that got no answer. */
  transportCode(error: unknown): string;
};

/** One payment to make through a channel, as the agent's `payChallenge` hands it over. */
export type ChannelPayment = {
  url: URL;
  request: PreparedRequest;
  challenge: Challenge;
  offer: Offer;
  method: AgentPaymentMethod;
  /** The URL without its fragment: what the server charges for. */
  resource: string;
  resourceKey: string;
  started: number;
  signStarted: number;
  timings: AgentTimings;
};

type Channel = {
  config: ChannelConfig;
  /** How it was first funded: what a charge found only on chain is booked under. */
  path: PaymentPath;
  id: Hex;
  chainId: number;
  network: Network;
  asset: Address;
  balance: bigint;
  charged: bigint;
  signedMax: bigint;
  /** The signature over `signedMax`. */
  signature: Hex | undefined;
  deposited: bigint;
  refunded: bigint;
  funds: ChannelFunds;
  url: string | undefined;
  /** Requests on one channel go one at a time: each voucher builds on the last one's charge. */
  queue: Promise<unknown>;
};

type Plan = { max: bigint; deposit: bigint; increment: bigint };

const CUMULATIVE_MISMATCH = new Set([
  batchError("cumulative_amount_mismatch"),
  batchError("cumulative_below_claimed"),
]);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const uint = (value: unknown): bigint | undefined =>
  isUint256String(value) ? BigInt(value as string) : undefined;

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * The agent's payment channels (`batch-settlement`): one per (receiver, token, receiver authorizer,
 * withdrawal delay) and network, opened by a deposit (EIP-3009 or Permit2, by the offer's transfer method)
 * and paid by cumulative vouchers signed by the payer's own key. Honest only: behaviours tamper with
 * `exact`-shaped terms, which channel payments do not have. The books follow {@link ChannelFunds}'
 * accounting.
 */
export class AgentChannels {
  private readonly channels = new Map<string, Channel>();

  constructor(private readonly deps: ChannelDeps) {}

  list(): ChannelSummary[] {
    return [...this.channels.values()].map((c) => ({
      channelId: c.id,
      config: c.config,
      network: c.network,
      url: c.url,
      balance: c.balance,
      charged: c.charged,
      signedMaxClaimable: c.signedMax,
      deposited: c.deposited,
      refunded: c.refunded,
      held: c.funds.held,
    }));
  }

  /** Pays `payment.offer` through its channel: a deposit when the channel cannot cover it, else a voucher. */
  pay(payment: ChannelPayment): Promise<{ result: AgentResult; response: ReadResponse | undefined }> {
    const channel = this.channelFor(payment);
    return this.locked(channel, () => this.payOnce(channel, payment, true));
  }

  /**
   * Asks each channel's server (at `url`, else the channel's last URL; only channels last paid at `url`
   * when it is given) for a refund of what is left beyond the charges, and books what came back.
   */
  async refund(url?: URL, client?: ChainClient): Promise<ChannelRefund[]> {
    const wanted = url && `${url.origin}${url.pathname}`;
    const results: ChannelRefund[] = [];
    for (const channel of this.channels.values()) {
      if (!channel.url) continue;
      const last = new URL(channel.url);
      if (wanted && `${last.origin}${last.pathname}` !== wanted) continue;
      results.push(await this.locked(channel, () => this.refundOne(channel, url ?? last, client)));
    }
    return results;
  }

  /**
   * Starts a timed withdrawal of every channel's unclaimed balance, for a server that does not refund:
   * the receiver may still claim vouchers until `finalizeWithdraw` (after the channel's withdrawal delay)
   * pays out what is unclaimed then. Sent from the agent's key, or from `client`'s account if it is the
   * payer's. Channels with nothing unclaimed, or a withdrawal already pending, are left alone.
   */
  async initiateWithdraw(client: ChainClient): Promise<ChannelWithdrawal[]> {
    const account = this.account(client);
    const started: ChannelWithdrawal[] = [];
    for (const channel of this.channels.values()) {
      if (channel.deposited === 0n && channel.signature === undefined) continue;
      await this.locked(channel, async () => {
        const { balance, totalClaimed, pending } = await this.readChain(client, channel);
        if (balance <= totalClaimed || pending.amount > 0n) return;
        const amount = balance - totalClaimed;
        const hash = await writeContract(client, {
          account,
          chain: client.chain ?? null,
          address: X402_BATCH_SETTLEMENT_ADDRESS,
          abi: x402BatchSettlementAbi,
          functionName: "initiateWithdraw",
          args: [channel.config, amount],
        });
        const receipt = await waitForTransactionReceipt(client, { hash });
        if (receipt.status !== "success") throw new Error(`initiateWithdraw reverted in ${hash}`);
        const block = await getBlock(client, { blockNumber: receipt.blockNumber });
        started.push({
          channelId: channel.id,
          amount,
          transaction: hash,
          finalizeAfter: block.timestamp + BigInt(channel.config.withdrawDelay),
        });
      });
    }
    return started;
  }

  /**
   * Finishes the pending withdrawals whose delay has passed (as of the latest block), and books each
   * channel against the chain: what came back leaves the budgets' reservation; what the receiver claimed
   * beyond the charges it reported is spent (`confirmedBy: "chain"`).
   */
  async finalizeWithdraw(client: ChainClient): Promise<ChannelWithdrawal[]> {
    const account = this.account(client);
    const finished: ChannelWithdrawal[] = [];
    const now = (await getBlock(client, { blockTag: "latest" })).timestamp;
    for (const channel of this.channels.values()) {
      await this.locked(channel, async () => {
        const { pending, balance: before } = await this.readChain(client, channel);
        if (pending.amount === 0n) return;
        // The next block is at least a second later than the latest one.
        if (now + 1n < pending.initiatedAt + BigInt(channel.config.withdrawDelay)) return;
        const hash = await writeContract(client, {
          account,
          chain: client.chain ?? null,
          address: X402_BATCH_SETTLEMENT_ADDRESS,
          abi: x402BatchSettlementAbi,
          functionName: "finalizeWithdraw",
          args: [channel.config],
        });
        const receipt = await waitForTransactionReceipt(client, { hash });
        if (receipt.status !== "success") throw new Error(`finalizeWithdraw reverted in ${hash}`);
        const returned = this.sync(channel, before, await this.readChain(client, channel), hash);
        finished.push({ channelId: channel.id, amount: returned, transaction: hash });
      });
    }
    return finished;
  }

  private account(client: ChainClient): Account {
    const { payer, address } = this.deps.signer;
    if (payer) return payer;
    if (client.account && isAddressEqual(client.account.address, address)) return client.account;
    throw new TypeError(
      "withdrawing needs an agent with a private key, or a client with the payer's account",
    );
  }

  private async readChain(client: ChainClient, channel: Channel) {
    const at = {
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      args: [channel.id],
    } as const;
    const [[balance, totalClaimed], [amount, initiatedAt]] = await Promise.all([
      readContract(client, { ...at, functionName: "channels" }),
      readContract(client, { ...at, functionName: "pendingWithdrawals" }),
    ]);
    return { balance, totalClaimed, pending: { amount, initiatedAt: BigInt(initiatedAt) } };
  }

  /**
   * Books a channel by the chain around a refund or withdrawal: the balance it lost is money returned
   * (compared on chain, since a deposit a server accepted may never have been settled); a total claimed
   * above the charges the server reported is money gone without a receipt.
   */
  private sync(
    channel: Channel,
    before: bigint,
    { balance, totalClaimed }: { balance: bigint; totalClaimed: bigint },
    transaction: Hex | undefined,
  ): bigint {
    if (totalClaimed > channel.charged) {
      const extra = totalClaimed - channel.charged;
      channel.charged = totalClaimed;
      this.deps.ledger.chargeChannel(
        channel.funds,
        this.chainRecord(channel, extra, voucherDigest(channel.chainId, channel.id, totalClaimed)),
        transaction,
        "chain",
      );
    }
    const returned = before > balance ? before - balance : 0n;
    channel.balance = channel.balance > returned ? channel.balance - returned : 0n;
    channel.refunded += returned;
    this.deps.ledger.releaseChannel(channel.funds, returned);
    return returned;
  }

  private salt(): Hex {
    // Drawn only when a channel is opened: swarms of agents paying `exact` need no randomness for it.
    this.deps.salt ??= randomNonce();
    return this.deps.salt;
  }

  private locked<T>(channel: Channel, run: () => Promise<T>): Promise<T> {
    const next = channel.queue.then(run, run);
    channel.queue = next.catch(() => undefined);
    return next;
  }

  private channelFor({ offer, method }: ChannelPayment): Channel {
    const { requirements } = offer;
    // The policy pays only offers on a network it knows.
    const network = offer.network as Network;
    const extra = requirements.extra ?? {};
    const receiverAuthorizer = getAddress(extra.receiverAuthorizer as string);
    const withdrawDelay = typeof extra.withdrawDelay === "number" ? extra.withdrawDelay : MIN_WITHDRAW_DELAY;
    const key =
      `${network}|${requirements.payTo}|${requirements.asset}|${receiverAuthorizer}|${withdrawDelay}`.toLowerCase();
    let channel = this.channels.get(key);
    if (channel) return channel;
    const payer = this.deps.signer.address;
    const config: ChannelConfig = {
      payer,
      // The payer's own key signs vouchers: plain ECDSA, which servers may check without the facilitator.
      payerAuthorizer: payer,
      receiver: getAddress(requirements.payTo),
      receiverAuthorizer,
      token: getAddress(requirements.asset),
      withdrawDelay,
      salt: this.salt(),
    };
    const chainId = chainIdFromNetwork(network);
    channel = {
      config,
      path: method.path,
      id: channelIdOf(chainId, config),
      chainId,
      network,
      asset: config.token,
      balance: 0n,
      charged: 0n,
      signedMax: 0n,
      signature: undefined,
      deposited: 0n,
      refunded: 0n,
      funds: this.deps.ledger.openChannel(0n),
      url: undefined,
      queue: Promise.resolve(),
    };
    this.channels.set(key, channel);
    return channel;
  }

  /** Deposit or voucher, and what it puts at risk beyond what the books already count for the channel. */
  private plan(channel: Channel, requirements: PaymentRequirements, amount: bigint): Plan {
    const max = channel.charged + amount;
    const { cover } = channel.funds;
    if (channel.balance > 0n && max <= channel.balance) {
      return { max, deposit: 0n, increment: max > cover ? max - cover : 0n };
    }
    const minDeposit = uint(requirements.extra?.minDeposit) ?? 0n;
    let deposit = this.deps.depositMultiplier * amount;
    if (minDeposit > deposit) deposit = minDeposit;
    if (max - channel.balance > deposit) deposit = max - channel.balance;
    if (deposit > this.deps.maxDeposit) {
      throw new PolicyError(
        "max_per_payment",
        `a channel deposit of ${deposit} (at most ${this.deps.maxDeposit} per deposit)`,
      );
    }
    // All of a deposit is at risk once signed; it always covers the voucher that goes with it.
    return { max, deposit, increment: deposit };
  }

  private async payOnce(
    channel: Channel,
    payment: ChannelPayment,
    mayRetry: boolean,
  ): Promise<{ result: AgentResult; response: ReadResponse | undefined }> {
    const { offer, timings, url } = payment;
    const { requirements } = offer;
    const plan = this.plan(channel, requirements, offer.amount);
    const claim = this.deps.ledger.reserve(payment.resourceKey, plan.increment);
    let signed = false;
    let header: string;
    let voucherSignature: Hex;
    let digest: Hex;
    try {
      digest = voucherDigest(channel.chainId, channel.id, plan.max);
      const voucherSigning = this.deps.signer.signVoucher(channel.chainId, channel.id, plan.max, digest);
      let payload: BatchPayload;
      if (plan.deposit > 0n) {
        const draft = this.depositDraft(channel, payment, plan.deposit);
        claim.sign(draft.booked, domainFromRequirements(requirements));
        signed = true;
        const [signature, depositSignature] = await Promise.all([
          voucherSigning,
          this.deps.signer.signDeposit(draft.typedData),
        ]);
        voucherSignature = signature;
        payload = {
          type: "deposit",
          channelConfig: channel.config,
          voucher: { channelId: channel.id, maxClaimableAmount: `${plan.max}`, signature },
          deposit: { amount: `${plan.deposit}`, authorization: draft.authorization(depositSignature) },
        };
      } else {
        voucherSignature = await voucherSigning;
        payload = {
          type: "voucher",
          channelConfig: channel.config,
          voucher: { channelId: channel.id, maxClaimableAmount: `${plan.max}`, signature: voucherSignature },
        };
      }
      header = this.encode(payment.challenge, requirements, payload);
    } catch (error) {
      if (signed) claim.keep();
      else claim.release();
      throw error;
    }
    const paidStarted = performance.now();
    timings.sign = (timings.sign ?? 0) + (paidStarted - payment.signStarted);
    // A sent voucher may be claimed whether or not the server answers: its increment stays with the channel.
    const failed = (claimOf: Claim) => (plan.deposit > 0n ? claimOf.keep() : claimOf.hold(channel.funds));
    const attempt = {
      amount: offer.amount,
      payTo: offer.payTo,
      asset: channel.asset,
      network: channel.network,
      path: payment.method.path,
    };

    let response: ReadResponse;
    try {
      response = await this.deps.send(url, payment.request, {
        ...payment.request.headers,
        "payment-signature": header,
      });
    } catch (error) {
      failed(claim);
      const ended = performance.now();
      timings.paid = ended - paidStarted;
      timings.e2e = ended - payment.started;
      return {
        result: {
          status: 0,
          outcome: "error",
          errorCode: this.deps.transportCode(error),
          ...attempt,
          timings,
          error: error as Error,
          url: url.href,
        },
        response: undefined,
      };
    }
    const ended = performance.now();
    timings.paid = ended - paidStarted;
    timings.e2e = ended - payment.started;
    const { receipt, errorCode } = this.deps.verdict(response);
    const base = { status: response.status, ...attempt, timings, url: url.href };
    if (errorCode === undefined) {
      claim.hold(channel.funds);
      channel.url = payment.resource;
      channel.signedMax = plan.max;
      channel.signature = voucherSignature;
      if (plan.deposit > 0n) {
        channel.balance += plan.deposit;
        channel.deposited += plan.deposit;
      }
      // Never more than this request signed for, whatever the receipt says; its absence means all of it.
      const said = uint(receipt?.extra?.chargedAmount);
      const charge = said === undefined ? offer.amount : min(said, offer.amount);
      channel.charged += charge;
      const transaction = receipt?.transaction ? (receipt.transaction as Hex) : undefined;
      this.deps.ledger.chargeChannel(
        channel.funds,
        this.record(channel, payment, charge, digest, 0n),
        transaction,
        "server",
      );
      return {
        // A voucher is metered like `upto`: the run holds its charge to the chain, and to the price.
        result: { ...base, outcome: "paid", charged: charge, ...(transaction ? { transaction } : {}) },
        response,
      };
    }
    failed(claim);
    if (mayRetry && response.status === 402 && CUMULATIVE_MISMATCH.has(errorCode)) {
      if (this.adopt(channel, response, payment)) {
        payment.signStarted = performance.now();
        return this.payOnce(channel, payment, false);
      }
    }
    return { result: { ...base, outcome: "payment_failed", errorCode }, response };
  }

  /**
   * A corrective 402: takes the server's word on the channel only where the agent's own signature backs
   * it (the voucher state recovers to the agent's key, and the charge lies between what was claimed on
   * chain and what that voucher allows). True when adopted.
   */
  private adopt(channel: Channel, response: ReadResponse, payment: ChannelPayment): boolean {
    let required: PaymentRequired;
    try {
      const decoded = challengeFromResponse(response.headers, response.body, 2).paymentRequired;
      if (decoded.x402Version !== 2) return false;
      required = decoded;
    } catch {
      return false;
    }
    const accept = required.accepts.find(
      (a) => a.scheme === "batch-settlement" && a.network === payment.offer.requirements.network,
    );
    const state = accept?.extra?.channelState;
    const voucher = accept?.extra?.voucherState;
    if (!isRecord(state) || !isRecord(voucher)) return false;
    if (typeof state.channelId !== "string" || state.channelId.toLowerCase() !== channel.id.toLowerCase()) {
      return false;
    }
    const charged = uint(state.chargedCumulativeAmount);
    const balance = uint(state.balance);
    const totalClaimed = uint(state.totalClaimed);
    const signedMax = uint(voucher.signedMaxClaimable);
    const signature = voucher.signature;
    if (charged === undefined || balance === undefined || totalClaimed === undefined) return false;
    if (signedMax === undefined || typeof signature !== "string") return false;
    if (charged > signedMax || charged < totalClaimed) return false;
    try {
      const signer = recoverAddress(voucherDigest(channel.chainId, channel.id, signedMax), signature as Hex);
      if (signer.toLowerCase() !== this.deps.signer.address.toLowerCase()) return false;
    } catch {
      return false;
    }
    const known = channel.charged;
    if (channel.signature === undefined && channel.deposited === 0n) {
      // A channel these books never funded (an earlier run's): they start at its charged level.
      channel.funds = this.deps.ledger.openChannel(charged);
    } else if (charged > known) {
      // Charges the agent signed for but never saw a receipt of.
      this.deps.ledger.chargeChannel(
        channel.funds,
        this.record(
          channel,
          payment,
          charged - known,
          voucherDigest(channel.chainId, channel.id, charged),
          0n,
        ),
        undefined,
        "server",
      );
    }
    channel.charged = charged;
    channel.balance = balance;
    channel.signedMax = signedMax;
    channel.signature = signature as Hex;
    channel.url ??= payment.resource;
    return true;
  }

  private async refundOne(
    channel: Channel,
    url: URL,
    client: ChainClient | undefined,
  ): Promise<ChannelRefund> {
    const done = (outcome: ChannelRefund["outcome"], rest: Partial<ChannelRefund> = {}): ChannelRefund => ({
      channelId: channel.id,
      outcome,
      refunded: 0n,
      ...rest,
    });
    if (channel.balance <= channel.charged) return done("empty");
    this.deps.checkHost(url);
    const request = await this.deps.prepare();
    const probe = await this.deps.send(url, request, request.headers);
    if (probe.status !== 402) return done("failed", { errorCode: `http_${probe.status}` });
    let challenge: Challenge;
    try {
      ({ challenge } = challengeFromResponse(probe.headers, probe.body, 2));
    } catch (error) {
      return done("failed", { errorCode: error instanceof PolicyError ? error.reason : "malformed_402" });
    }
    const offer = challenge.offers.find((o) => {
      const r = o.requirements;
      return (
        r.scheme === "batch-settlement" &&
        o.network === channel.network &&
        r.payTo.toLowerCase() === channel.config.receiver.toLowerCase() &&
        r.asset.toLowerCase() === channel.asset.toLowerCase() &&
        String(r.extra.receiverAuthorizer).toLowerCase() === channel.config.receiverAuthorizer.toLowerCase()
      );
    });
    if (!offer) return done("failed", { errorCode: "no_channel_offer" });
    // A zero-charge voucher: the receiver may claim exactly what it charged, and refunds the rest.
    const signature = await this.deps.signer.signVoucher(
      channel.chainId,
      channel.id,
      channel.charged,
      voucherDigest(channel.chainId, channel.id, channel.charged),
    );
    const payload: BatchPayload = {
      type: "refund",
      channelConfig: channel.config,
      voucher: { channelId: channel.id, maxClaimableAmount: `${channel.charged}`, signature },
    };
    const header = this.encode(challenge, offer.requirements, payload);
    const before = client && (await this.readChain(client, channel)).balance;
    const response = await this.deps.send(url, request, { ...request.headers, "payment-signature": header });
    const { receipt, errorCode } = this.deps.verdict(response);
    if (errorCode !== undefined || !receipt) {
      return done("failed", { errorCode: errorCode ?? "no_receipt" });
    }
    const transaction = receipt.transaction ? (receipt.transaction as Hex) : undefined;
    const tx = transaction ? { transaction } : {};
    if (client && before !== undefined) {
      // The chain's word, not the server's: a refund only the receipt shows frees nothing. (Facilitators
      // answer once the refund is mined; a hash a server made up must not be waited for.)
      const returned = this.sync(channel, before, await this.readChain(client, channel), transaction);
      return done(returned > 0n ? "refunded" : "failed", {
        refunded: returned,
        ...tx,
        ...(returned > 0n ? {} : { errorCode: "refund_not_on_chain" }),
      });
    }
    const returned = min(uint(receipt.amount) ?? 0n, channel.balance - channel.charged);
    channel.balance -= returned;
    channel.refunded += returned;
    this.deps.ledger.releaseChannel(channel.funds, returned);
    return done("refunded", { refunded: returned, ...tx });
  }

  /**
   * A deposit's authorization, by the path's transfer method: what is signed, what the payload carries,
   * and what the books track until the server accepts it (its token or Permit2 nonce, and deadline).
   */
  private depositDraft(
    channel: Channel,
    payment: ChannelPayment,
    deposit: bigint,
  ): {
    typedData: DepositTypedData;
    authorization(signature: Hex): Deposit["authorization"];
    booked: SignedPayment;
  } {
    const { requirements } = payment.offer;
    const deadline = String(Math.floor(Date.now() / 1000) + requirements.maxTimeoutSeconds);
    const random = randomNonce();
    if (payment.method.path === "batch-settlement/permit2") {
      const permit = {
        from: this.deps.signer.address,
        permitted: { token: channel.asset, amount: `${deposit}` },
        spender: PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
        nonce: BigInt(random).toString(),
        deadline,
        witness: { channelId: channel.id },
      };
      return {
        typedData: permit2DepositTypedData(channel.chainId, permit),
        authorization: (signature) => ({ permit2Authorization: { ...permit, signature } }),
        booked: this.record(channel, payment, deposit, random, BigInt(deadline)),
      };
    }
    const domain = domainFromRequirements(requirements);
    const terms = {
      from: this.deps.signer.address,
      to: ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
      value: `${deposit}`,
      validAfter: "0",
      validBefore: deadline,
      // The collector derives the token nonce from the channel and this salt.
      nonce: erc3009DepositNonce(channel.id, random),
    };
    return {
      typedData: erc3009DepositTypedData(
        {
          name: domain.name,
          version: domain.version,
          chainId: channel.chainId,
          verifyingContract: channel.asset,
        },
        terms,
      ),
      authorization: (signature) => ({
        erc3009Authorization: { validAfter: "0", validBefore: deadline, salt: random, signature },
      }),
      booked: this.record(channel, payment, deposit, terms.nonce, BigInt(deadline)),
    };
  }

  /** The record of money the chain shows claimed beyond the charges: not tied to any one request. */
  private chainRecord(channel: Channel, amount: bigint, nonce: Hex): SignedPayment {
    const url = channel.url ?? "";
    return {
      path: channel.path,
      url,
      resourceKey: url,
      x402Version: 2,
      amount,
      asset: channel.asset,
      network: channel.network,
      payTo: channel.config.receiver,
      nonce,
      validBefore: 0n,
    };
  }

  /**
   * The books' record of a channel payment: a deposit's authorization (its ERC-3009 nonce and deadline),
   * or a request's charge, whose `nonce` is the digest of the voucher it was paid with and whose
   * `validBefore` is 0: a voucher does not expire, the channel's refund or withdrawal ends it.
   */
  private record(
    channel: Channel,
    payment: ChannelPayment,
    amount: bigint,
    nonce: Hex,
    validBefore: bigint,
  ): SignedPayment {
    return {
      path: payment.method.path,
      url: payment.resource,
      resourceKey: payment.resourceKey,
      x402Version: 2,
      amount,
      asset: channel.asset,
      network: channel.network,
      payTo: channel.config.receiver,
      nonce,
      validBefore,
    };
  }

  private encode(challenge: Challenge, requirements: PaymentRequirements, payload: BatchPayload): string {
    return encodePaymentSignatureHeader({
      x402Version: 2,
      ...(challenge.resource ? { resource: challenge.resource } : {}),
      accepted: requirements,
      payload: payload as unknown as Record<string, unknown>,
      ...(challenge.extensions ? { extensions: challenge.extensions } : {}),
    });
  }
}
