import { type Address, getAddress, type Hex, isAddress } from "viem";
import {
  chainIdFromNetwork,
  type ExactEvmAuthorization,
  type PaymentRequirements,
  PERMIT2_SPENDER,
  type Permit2Authorization,
  type Permit2Kind,
} from "../protocol/index.ts";

/**
 * The payment paths an agent speaks, named `scheme/assetTransferMethod` as the official SDK selects them:
 * `exact` by the token's EIP-3009 authorization or by a Permit2 signature, and `upto` (metered, Permit2).
 */
export type PaymentPath = "exact/eip3009" | "exact/permit2" | "upto/permit2";

export const PAYMENT_PATHS: readonly PaymentPath[] = ["exact/eip3009", "exact/permit2", "upto/permit2"];

/** What the agent signs, whatever the path: the signing key meets it through {@link PaymentSigner}. */
export type PaymentSigner = {
  signTransfer(requirements: PaymentRequirements, authorization: ExactEvmAuthorization): Hex | Promise<Hex>;
  signPermit2(kind: Permit2Kind, chainId: number, authorization: Permit2Authorization): Hex | Promise<Hex>;
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
  /** Why this path cannot pay `requirements` even though the policy allows them, or undefined. */
  refusal(requirements: PaymentRequirements): string | undefined;
  /** Signs `terms` and gives the `PaymentPayload.payload` that carries them. */
  payload(
    signer: PaymentSigner,
    requirements: PaymentRequirements,
    terms: ExactEvmAuthorization,
  ): Record<string, unknown> | Promise<Record<string, unknown>>;
};

const exactEip3009: AgentPaymentMethod = {
  path: "exact/eip3009",
  v1: true,
  refusal: () => undefined,
  payload(signer, requirements, authorization) {
    const signature = signer.signTransfer(requirements, authorization);
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

const METHODS: Readonly<Record<PaymentPath, AgentPaymentMethod>> = {
  "exact/eip3009": exactEip3009,
  "exact/permit2": permit2Method("exact"),
  "upto/permit2": permit2Method("upto"),
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
