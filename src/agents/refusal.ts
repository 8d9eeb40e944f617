/**
 * Why an agent refused to pay (or to send a request at all). Every reason is decided before anything is
 * signed, so a refusal never leaves a usable authorization behind.
 */
export type PolicyReason =
  /** The 402 is not x402, does not decode, or carries an accept with an impossible field. */
  | "malformed_402"
  /** No accept uses a scheme this agent can pay: `exact` via EIP-3009, the authorization or upfront flow. */
  | "scheme_not_supported"
  | "network_not_allowed"
  /** The token is not one of `policy.assets`, or its EIP-712 name/version differ from the known ones. */
  | "asset_unknown"
  | "recipient_not_allowed"
  /** The accept wants an authorization valid for longer than `policy.maxAuthorizationSeconds`. */
  | "authorization_too_long"
  | "max_per_payment"
  | "max_payments_per_url"
  | "budget_run"
  | "budget_day"
  /** The URL, or a redirect's target, is not in `policy.allowedHosts` (or is not http/https). */
  | "host_not_allowed"
  | "too_many_redirects";

/** Every reason an agent's policy refuses for (checked against the type above), for thresholds that name one. */
export const POLICY_REASONS = [
  "malformed_402",
  "scheme_not_supported",
  "network_not_allowed",
  "asset_unknown",
  "recipient_not_allowed",
  "authorization_too_long",
  "max_per_payment",
  "max_payments_per_url",
  "budget_run",
  "budget_day",
  "host_not_allowed",
  "too_many_redirects",
] as const;
type MissingReason = Exclude<PolicyReason, (typeof POLICY_REASONS)[number]>;
const reasonsComplete: MissingReason extends never ? true : MissingReason = true;
void reasonsComplete;

/** A payment (or request) the agent's {@link SpendingPolicy} refused. Nothing was signed or sent for it. */
export class PolicyError extends Error {
  override name = "PolicyError";

  constructor(
    readonly reason: PolicyReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
