/**
 * Paying agents for load and abuse tests: a deterministic wallet pool, an x402 client on undici with a
 * spending policy enforced before anything is signed, and honest or hostile payment behaviours.
 */
export {
  type Agent,
  type AgentAccount,
  type AgentOptions,
  type AgentOutcome,
  type AgentResult,
  type AgentTimings,
  createAgent,
  type PayOptions,
} from "./agent.ts";
export { type Behaviour, type BehaviourName, behaviours, type PaymentDraft } from "./behaviours.ts";
export type { ChannelRefund, ChannelSummary, ChannelWithdrawal } from "./channels.ts";
export { sharedDispatcher } from "./http.ts";
export type { OutstandingAuthorization, PaymentRecord, SignedPayment } from "./ledger.ts";
export {
  BASE_USDC,
  DEFAULT_MAX_PER_PAYMENT,
  type KnownAsset,
  type SpendingPolicy,
} from "./policy.ts";
export type { ChainClient, Reconciliation } from "./reconcile.ts";
export { POLICY_REASONS, PolicyError, type PolicyReason } from "./refusal.ts";
export { createWalletPool, type WalletPool, type WalletPoolOptions } from "./wallets.ts";
