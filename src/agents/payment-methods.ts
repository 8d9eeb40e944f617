import { type Address, getAddress, type Hex, isAddress } from "viem";
import type { erc3009DepositTypedData, permit2DepositTypedData } from "../protocol/batch-settlement.ts";
import {
  chainIdFromNetwork,
  type Eip3009Domain,
  type ExactEvmAuthorization,
  type PaymentRequirements,
  PERMIT2_SPENDER,
  type Permit2Authorization,
  type Permit2Kind,
} from "../protocol/index.ts";

/**
 * The payment paths an agent speaks, named `scheme/assetTransferMethod` as the official SDK selects them:
 * `exact` by the token's EIP-3009 authorization or by a Permit2 signature, `upto` (metered, Permit2), and
 * `batch-settlement` (payment channels: a deposit by EIP-3009 or Permit2, then vouchers).
 */
export type PaymentPath =
  | "exact/eip3009"
  | "exact/permit2"
  | "upto/permit2"
  | "batch-settlement/eip3009"
  | "batch-settlement/permit2";

export const PAYMENT_PATHS: readonly PaymentPath[] = [
  "exact/eip3009",
  "exact/permit2",
  "upto/permit2",
  "batch-settlement/eip3009",
  "batch-settlement/permit2",
];

/** The EIP-712 message a channel deposit signs, by its transfer method. */
export type DepositTypedData =
  | ReturnType<typeof erc3009DepositTypedData>
  | ReturnType<typeof permit2DepositTypedData>;

/** What the agent signs, whatever the path: the signing key meets it through {@link PaymentSigner}. */
export type PaymentSigner = {
  signTransfer(domain: Eip3009Domain, authorization: ExactEvmAuthorization): Hex | Promise<Hex>;
  signPermit2(kind: Permit2Kind, chainId: number, authorization: Permit2Authorization): Hex | Promise<Hex>;
  /** A channel deposit: EIP-3009 `ReceiveWithAuthorization` on the token, or a Permit2 witness transfer. */
  signDeposit(typedData: DepositTypedData): Hex | Promise<Hex>;
  /**
   * A batch-settlement voucher: the receiver may claim up to `maxClaimableAmount` from the channel.
   * `digest` is its EIP-712 digest, which the caller has at hand anyway.
   */
  signVoucher(chainId: number, channelId: Hex, maxClaimableAmount: bigint, digest: Hex): Hex | Promise<Hex>;
};

/**
 * One payment path on the agent's side. Every path is drafted, tampered with by behaviours, and booked as
 * the same terms, EIP-3009's (`from`, `to`, `value`, `validAfter`, `validBefore`, a 32-byte `nonce`): a
 * Permit2 payment is those terms with `value` as the permitted amount, `validBefore` as the deadline and
 * the nonce as a uint256. So the policy, the budgets and the hostile behaviours hold for every path alike.
 */
export type AgentPaymentMethod = {
  readonly path: PaymentPath;
  /** x402 v1 has a shape for it. */
  readonly v1: boolean;
  /** The server settles what it metered, at most the signed amount. */
  readonly metered: boolean;
  /**
   * Pays through a channel: the agent's channel book drafts, signs and books these payments (deposit or
   * voucher, by the channel's state), and `payload` is never called.
   */
  readonly channel?: true;
  /** Why this path cannot pay `requirements` even though the policy allows them, or undefined. */
  refusal(requirements: PaymentRequirements): string | undefined;
  /**
   * Signs `terms` and gives the `PaymentPayload.payload` that carries them; `domain` is the token's,
   * which the agent has already read from the offer for its books.
   */
  payload(
    signer: PaymentSigner,
    requirements: PaymentRequirements,
    terms: ExactEvmAuthorization,
    domain: Eip3009Domain,
  ): Record<string, unknown> | Promise<Record<string, unknown>>;
};

const exactEip3009: AgentPaymentMethod = {
  path: "exact/eip3009",
  v1: true,
  metered: false,
  refusal: () => undefined,
  payload(signer, _requirements, authorization, domain) {
    const signature = signer.signTransfer(domain, authorization);
    return typeof signature === "string"
      ? { signature, authorization }
      : signature.then((s) => ({ signature: s, authorization }));
  },
};

/** The Permit2 message the terms stand for. */
export function permit2Authorization(
  kind: Permit2Kind,
  requirements: PaymentRequirements,
  terms: ExactEvmAuthorization,
): Permit2Authorization {
  return {
    from: terms.from,
    permitted: { token: getAddress(requirements.asset), amount: terms.value },
    spender: PERMIT2_SPENDER[kind],
    nonce: BigInt(terms.nonce).toString(),
    deadline: terms.validBefore,
    witness: {
      to: terms.to,
      ...(kind === "upto" ? { facilitator: requirements.extra?.facilitatorAddress as Address } : {}),
      validAfter: terms.validAfter,
    },
  };
}

function permit2Method(kind: Permit2Kind): AgentPaymentMethod {
  return {
    path: `${kind}/permit2`,
    v1: false,
    metered: kind === "upto",
    refusal(requirements) {
      const facilitator = requirements.extra?.facilitatorAddress;
      if (kind === "upto" && (typeof facilitator !== "string" || !isAddress(facilitator))) {
        return "an upto offer without extra.facilitatorAddress";
      }
      return undefined;
    },
    payload(signer, requirements, terms) {
      const authorization = permit2Authorization(kind, requirements, terms);
      const signature = signer.signPermit2(kind, chainIdFromNetwork(requirements.network), authorization);
      return typeof signature === "string"
        ? { signature, permit2Authorization: authorization }
        : signature.then((s) => ({ signature: s, permit2Authorization: authorization }));
    },
  };
}

const batchMethod = (path: "batch-settlement/eip3009" | "batch-settlement/permit2"): AgentPaymentMethod => ({
  path,
  v1: false,
  metered: false,
  channel: true,
  refusal(requirements) {
    const authorizer = requirements.extra?.receiverAuthorizer;
    if (typeof authorizer !== "string" || !isAddress(authorizer) || BigInt(authorizer) === 0n) {
      return "a batch-settlement offer without extra.receiverAuthorizer";
    }
    const delay = requirements.extra?.withdrawDelay;
    if (delay !== undefined && (!Number.isSafeInteger(delay) || (delay as number) < 0)) {
      return "a batch-settlement offer with a malformed extra.withdrawDelay";
    }
    return undefined;
  },
  payload() {
    throw new Error("batch-settlement payloads are made by the agent's channels");
  },
});

const METHODS: Readonly<Record<PaymentPath, AgentPaymentMethod>> = {
  "exact/eip3009": exactEip3009,
  "exact/permit2": permit2Method("exact"),
  "upto/permit2": permit2Method("upto"),
  "batch-settlement/eip3009": batchMethod("batch-settlement/eip3009"),
  "batch-settlement/permit2": batchMethod("batch-settlement/permit2"),
};

/** The path an offer asks for, as the official client reads it (`extra.assetTransferMethod`, default EIP-3009). */
export function pathOf(requirements: PaymentRequirements): string {
  const method = requirements.extra?.assetTransferMethod;
  const transfer =
    typeof method === "string" ? method : requirements.scheme === "upto" ? "permit2" : "eip3009";
  return `${requirements.scheme}/${transfer}`;
}

export function paymentMethod(path: PaymentPath): AgentPaymentMethod {
  return METHODS[path];
}

export function isPaymentPath(path: string): path is PaymentPath {
  return Object.hasOwn(METHODS, path);
}
