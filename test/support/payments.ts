import type { Hex } from "viem";
import { BASE_NETWORK, USDC_ADDRESS, USDC_NAME, USDC_VERSION } from "../../src/chain/index.ts";
import {
  addressFromPrivateKey,
  authorizationFor,
  type ExactEvmAuthorization,
  type PaymentPayload,
  type PaymentRequirements,
  type SettleResponse,
  signTransferAuthorization,
} from "../../src/protocol/index.ts";

/** `exact` requirements for the devnet's USDC, as a reference resource server would publish them. */
export function usdcRequirements(
  payTo: Hex,
  amount: bigint | string,
  overrides: Partial<PaymentRequirements> = {},
) {
  return {
    scheme: "exact",
    network: BASE_NETWORK,
    asset: USDC_ADDRESS,
    amount: String(amount),
    payTo,
    maxTimeoutSeconds: 300,
    extra: { name: USDC_NAME, version: USDC_VERSION },
    ...overrides,
  } satisfies PaymentRequirements;
}

export type SignOptions = {
  /** Fields of the authorization to override after the defaults are filled in. */
  authorization?: Partial<ExactEvmAuthorization>;
  /** Sign over this EIP-712 domain name/version instead of the requirements' (a token mismatch). */
  domain?: { name?: string; version?: string };
  /** Replace the signature bytes after signing. */
  signature?: Hex;
};

/** A v2 PaymentPayload paying `requirements`, signed as the official client does (validAfter 0, fresh nonce). */
export function signPayment(
  privateKey: Hex,
  requirements: PaymentRequirements,
  options: SignOptions = {},
): PaymentPayload {
  const authorization: ExactEvmAuthorization = {
    // A caller signing thousands passes `from` and saves deriving it from the key each time.
    ...authorizationFor(options.authorization?.from ?? addressFromPrivateKey(privateKey), requirements),
    ...options.authorization,
  };
  const signature =
    options.signature ??
    signTransferAuthorization(
      privateKey,
      {
        name: options.domain?.name ?? String(requirements.extra?.name),
        version: options.domain?.version ?? String(requirements.extra?.version),
        chainId: Number(requirements.network.split(":")[1]),
        verifyingContract: requirements.asset,
      },
      authorization,
    );
  return { x402Version: 2, accepted: requirements, payload: { signature, authorization } };
}

/** `POST /settle` to a facilitator at `url`, as a v2 resource server sends it; the answer as parsed. */
export async function postSettle(
  url: string,
  paymentPayload: PaymentPayload,
  paymentRequirements: PaymentRequirements,
): Promise<SettleResponse> {
  const response = await fetch(`${url}/settle`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ x402Version: 2, paymentPayload, paymentRequirements }),
  });
  return (await response.json()) as SettleResponse;
}
