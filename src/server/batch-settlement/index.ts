import type { Address } from "viem";
import { MAX_WITHDRAW_DELAY, MIN_WITHDRAW_DELAY, type Network } from "../../protocol/index.ts";
import type { FacilitatorClient } from "../facilitator-client.ts";
import { BatchChannels, defaultOnchainStateTtlMs, type ReceiverAuthorizer } from "./channels.ts";
import { ChannelManager, type ChannelManagerOptions } from "./manager.ts";
import { type ChannelStoreOption, openChannelStore } from "./store.ts";

export {
  BatchChannels,
  type BatchRequest,
  type ChannelSession,
  correctiveExtra,
  type ReceiverAuthorizer,
} from "./channels.ts";
export {
  ChannelManager,
  type ChannelManagerOptions,
  ChannelOperationError,
  type ClaimResult,
  type RefundResult,
  type SettleResult,
} from "./manager.ts";
export {
  type ChannelRecord,
  type ChannelReservation,
  type ChannelStore,
  type ChannelStoreOption,
  FileChannelStore,
  MemoryChannelStore,
} from "./store.ts";

/** Settings of the paywall's `batch-settlement` routes. */
export type PaywallBatchSettlementOptions = {
  /** Where channel books live: `"memory"` (the default, lost on restart), `{ directory }` for files, or a store. */
  channelStore?: ChannelStoreOption;
  /**
   * The receiver-authorizer key, advertised as `extra.receiverAuthorizer` and signing claims and refunds.
   * Without it the facilitator's `/supported` kind must name one, and the facilitator signs.
   */
  receiverAuthorizer?: ReceiverAuthorizer;
  /** Seconds a payer's withdrawal waits (default 900, the contract's minimum). */
  withdrawDelay?: number;
  /** Mirrored on-chain state younger than this lets vouchers be checked without the facilitator. */
  onchainStateTtlMs?: number;
  /** Deposits asked for, as a multiple of the price (`extra.minDeposit`; default 10). */
  minDepositMultiplier?: number;
  /** The channel manager's schedules and shutdown work. */
  manager?: ChannelManagerOptions;
};

/** The paywall's batch-settlement machinery: the channel books and the manager that claims against them. */
export class BatchSettlementPath {
  readonly channels: BatchChannels;
  readonly manager: ChannelManager;
  readonly withdrawDelay: number;
  readonly minDepositMultiplier: bigint;
  readonly receiverAuthorizer: Address | undefined;

  constructor(network: Network, facilitator: FacilitatorClient, options: PaywallBatchSettlementOptions = {}) {
    this.withdrawDelay = options.withdrawDelay ?? MIN_WITHDRAW_DELAY;
    if (
      !Number.isSafeInteger(this.withdrawDelay) ||
      this.withdrawDelay < MIN_WITHDRAW_DELAY ||
      this.withdrawDelay > MAX_WITHDRAW_DELAY
    ) {
      throw new RangeError(
        `batchSettlement.withdrawDelay must be whole seconds in [${MIN_WITHDRAW_DELAY}, ${MAX_WITHDRAW_DELAY}]`,
      );
    }
    const multiplier = options.minDepositMultiplier ?? 10;
    if (!Number.isSafeInteger(multiplier) || multiplier < 1) {
      throw new RangeError("batchSettlement.minDepositMultiplier must be a positive integer");
    }
    this.minDepositMultiplier = BigInt(multiplier);
    this.receiverAuthorizer = options.receiverAuthorizer?.address;
    let manager: ChannelManager | undefined;
    this.channels = new BatchChannels({
      network,
      facilitator,
      store: openChannelStore(options.channelStore),
      ...(options.receiverAuthorizer ? { receiverAuthorizer: options.receiverAuthorizer } : {}),
      onchainStateTtlMs: options.onchainStateTtlMs ?? defaultOnchainStateTtlMs(this.withdrawDelay),
      onWithdrawal: (channelId) => manager?.claimSoon(channelId),
    });
    manager = new ChannelManager(this.channels, facilitator, network, this.withdrawDelay, options.manager);
    this.manager = manager;
  }

  /** What a batch route's requirements add under `extra` for a price of `amount` atomic units. */
  extra(amount: string, receiverAuthorizer: Address): Record<string, unknown> {
    return {
      receiverAuthorizer,
      withdrawDelay: this.withdrawDelay,
      minDeposit: (BigInt(amount) * this.minDepositMultiplier).toString(),
    };
  }
}
