/**
 * The reference x402 resource server: a fastify paywall that prices routes, verifies and settles through a
 * facilitator, and serves each payment at most once.
 */

export { SIWX_CHALLENGE_HEADER, type SiwxChallenge } from "../protocol/index.ts";
export {
  type ChannelManager,
  type ChannelManagerOptions,
  ChannelOperationError,
  type ChannelRecord,
  type ChannelReservation,
  type ChannelStore,
  type ChannelStoreOption,
  type ClaimResult,
  FileChannelStore,
  MemoryChannelStore,
  type PaywallBatchSettlementOptions,
  type ReceiverAuthorizer,
  type RefundResult,
  type SettleResult,
} from "./batch-settlement/index.ts";
export type { AssetTransferMethod, RouteScheme } from "./payment-schemes.ts";
export {
  channelManagerOf,
  type PaywallAsset,
  type PaywallOptions,
  USDC_ASSET,
  x402Paywall,
} from "./plugin.ts";
export { type Price, toAtomicAmount } from "./price.ts";
export type { PaidRoute, PaymentFlow, PayTo } from "./routes.ts";
export {
  SETTLEMENT_OVERRIDES_HEADER,
  type SettlementOverrides,
  setSettlementOverrides,
} from "./settlement-overrides.ts";
export type { SessionRoute, SessionsOptions } from "./siwx.ts";
export {
  type ListedRoute,
  type ResourceServer,
  type ResourceServerOptions,
  startResourceServer,
} from "./standalone.ts";
