import type { ExactEvmAuthorization, PaymentRequirements } from "../protocol/index.ts";

/** What a behaviour decides on: one payment the agent's policy already allowed. */
export type PaymentDraft = {
  x402Version: 1 | 2;
  /** The accept being paid, in v2 field names. */
  requirements: PaymentRequirements;
  /** The honest authorization for it, not yet signed. */
  authorization: ExactEvmAuthorization;
  /** The last payment header this agent sent, to any URL. */
  previous: string | undefined;
  /** Signs `authorization` and encodes it as this payment's header (`PAYMENT-SIGNATURE` or `X-PAYMENT`). */
  sign(authorization: ExactEvmAuthorization): string | Promise<string>;
};

/** Turns a payment into the header value actually sent: honest agents sign it, hostile ones tamper. */
export type Behaviour = (draft: PaymentDraft) => string | Promise<string>;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * The built-in behaviours. Each hostile one is signed correctly by the agent's key, so that what gets
 * refused is the tampering (`x402` code in parentheses, as our server and facilitator answer it):
 * - `replay`: resends the previous payment header (`invalid_exact_evm_nonce_already_used`); the first
 *   payment, having nothing to replay, is honest;
 * - `underpay`: authorizes one atomic unit less (`invalid_exact_evm_payload_authorization_value_mismatch`);
 * - `wrongPayTo`: authorizes a transfer to itself (`invalid_exact_evm_recipient_mismatch`);
 * - `expired`: an authorization that expired a second ago (`invalid_exact_evm_payload_authorization_valid_before`);
 * - `garbage`: a header that is not base64 (`invalid_payload`, HTTP 400).
 */
export const behaviours = {
  honest: (draft) => draft.sign(draft.authorization),
  replay: (draft) => draft.previous ?? draft.sign(draft.authorization),
  underpay: (draft) =>
    draft.sign({ ...draft.authorization, value: (BigInt(draft.authorization.value) - 1n).toString() }),
  wrongPayTo: (draft) => draft.sign({ ...draft.authorization, to: draft.authorization.from }),
  expired: (draft) => draft.sign({ ...draft.authorization, validBefore: String(nowSeconds() - 1) }),
  garbage: () => "%not a payment%",
} satisfies Record<string, Behaviour>;

export type BehaviourName = keyof typeof behaviours;
