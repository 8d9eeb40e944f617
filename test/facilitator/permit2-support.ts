import { type Address, erc20Abi, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { type Devnet, mockUsdcAbi, USDC_ADDRESS, USDC_NAME, USDC_VERSION } from "../../src/chain/index.ts";
import {
  type PaymentPayload,
  type PaymentRequirements,
  PERMIT2_ADDRESS,
  PERMIT2_SPENDER,
  type Permit2Authorization,
  type Permit2Kind,
  permit2TypedData,
  type SettleResponse,
  type VerifyResponse,
} from "../../src/protocol/index.ts";
import { usdcRequirements } from "../support/payments.ts";

/** What the differential tests compare: a verdict, or "rejected" (ours: HTTP 400; official: it threw). */
export type Verdict = { isValid: boolean; invalidReason?: string } | "rejected";
export type Settlement = { success: boolean; errorReason?: string } | "rejected";

export type Signed = { payload: PaymentPayload; requirements: PaymentRequirements };

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Requirements of `kind` for the devnet's USDC, as the official servers publish them for Permit2. */
export function permit2Requirements(
  kind: Permit2Kind,
  payTo: Address,
  amount: bigint,
  facilitator?: Address,
  overrides: Partial<PaymentRequirements> = {},
): PaymentRequirements {
  return usdcRequirements(payTo, amount, {
    scheme: kind,
    extra: {
      name: USDC_NAME,
      version: USDC_VERSION,
      assetTransferMethod: "permit2",
      ...(facilitator ? { facilitatorAddress: facilitator } : {}),
    },
    ...overrides,
  });
}

export type Permit2SignOptions = {
  /** Authorization fields replaced before signing. */
  authorization?: Partial<Omit<Permit2Authorization, "witness">> & {
    witness?: Partial<Permit2Authorization["witness"]>;
  };
  /** Sign as this kind (its witness type) whatever the payment's scheme. */
  signAs?: Permit2Kind;
  chainId?: number;
  /** Replace the signature bytes after signing. */
  signature?: Hex;
};

let nonceCounter = BigInt(Date.now()) << 64n;

/** A Permit2 payment of `requirements`, signed as the SDK's clients sign it (validAfter 0, fresh nonce). */
export async function signPermit2(
  privateKey: Hex,
  requirements: PaymentRequirements,
  options: Permit2SignOptions = {},
): Promise<Signed> {
  const kind = requirements.scheme as Permit2Kind;
  const account = privateKeyToAccount(privateKey);
  nonceCounter += 1n;
  const facilitator = requirements.extra?.facilitatorAddress as Address | undefined;
  const authorization: Permit2Authorization = {
    from: account.address,
    permitted: { token: requirements.asset as Address, amount: requirements.amount },
    spender: PERMIT2_SPENDER[kind],
    nonce: nonceCounter.toString(),
    deadline: String(nowSeconds() + requirements.maxTimeoutSeconds),
    ...options.authorization,
    witness: {
      to: requirements.payTo as Address,
      validAfter: "0",
      ...(kind === "upto" && facilitator ? { facilitator } : {}),
      ...options.authorization?.witness,
    },
  };
  const chainId = options.chainId ?? Number(requirements.network.split(":")[1]);
  const signature =
    options.signature ??
    (await account.signTypedData(
      permit2TypedData(options.signAs ?? kind, chainId, authorization) as Parameters<
        typeof account.signTypedData
      >[0],
    ));
  return {
    payload: {
      x402Version: 2,
      accepted: requirements,
      payload: { signature, permit2Authorization: authorization },
    },
    requirements,
  };
}

/** `signed` with a field of its authorization replaced afterwards (what no signer would produce). */
export function withAuthorization(
  signed: Signed,
  patch: (authorization: Record<string, unknown>) => void,
): Signed {
  const inner = signed.payload.payload as { signature: Hex; permit2Authorization: Permit2Authorization };
  const authorization = structuredClone(inner.permit2Authorization) as unknown as Record<string, unknown>;
  patch(authorization);
  return {
    payload: { ...signed.payload, payload: { ...inner, permit2Authorization: authorization } },
    requirements: signed.requirements,
  };
}

export type Eip2612Overrides = Partial<
  Record<"from" | "asset" | "spender" | "amount" | "deadline", string>
> & {
  /** Sign the permit with this key instead of the payer's. */
  signerKey?: Hex;
};

/**
 * `signed` with an `eip2612GasSponsoring` extension: an EIP-2612 permit of USDC to Permit2 for the amount,
 * signed as the SDK's client signs it (its nonce read from the token, the Permit2 deadline).
 */
export async function withEip2612(
  devnet: Devnet,
  privateKey: Hex,
  signed: Signed,
  overrides: Eip2612Overrides = {},
): Promise<Signed> {
  const owner = privateKeyToAccount(privateKey);
  const authorization = (signed.payload.payload as { permit2Authorization: Permit2Authorization })
    .permit2Authorization;
  const nonce = await devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: mockUsdcAbi,
    functionName: "nonces",
    args: [owner.address],
  });
  const amount = overrides.amount ?? authorization.permitted.amount;
  const deadline = overrides.deadline ?? authorization.deadline;
  const signer = privateKeyToAccount(overrides.signerKey ?? privateKey);
  const signature = await signer.signTypedData({
    domain: {
      name: USDC_NAME,
      version: USDC_VERSION,
      chainId: devnet.chainId,
      verifyingContract: USDC_ADDRESS,
    },
    types: {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "Permit",
    message: {
      owner: owner.address,
      spender: PERMIT2_ADDRESS,
      value: /^[0-9]+$/.test(amount) ? BigInt(amount) : 0n,
      nonce,
      deadline: /^[0-9]+$/.test(deadline) ? BigInt(deadline) : 0n,
    },
  });
  const info = {
    from: overrides.from ?? owner.address,
    asset: overrides.asset ?? USDC_ADDRESS,
    spender: overrides.spender ?? PERMIT2_ADDRESS,
    amount,
    nonce: nonce.toString(),
    deadline,
    signature,
    version: "1",
  };
  return {
    payload: { ...signed.payload, extensions: { eip2612GasSponsoring: { info } } } as PaymentPayload,
    requirements: signed.requirements,
  };
}

export const balanceOf = (devnet: Devnet, address: Address) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

async function post(url: string, route: "verify" | "settle", signed: Signed): Promise<Response> {
  return fetch(`${url}/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      x402Version: 2,
      paymentPayload: signed.payload,
      paymentRequirements: signed.requirements,
    }),
  });
}

/** Our facilitator's verify verdict over HTTP. */
export async function oursVerify(url: string, signed: Signed): Promise<Verdict> {
  const response = await post(url, "verify", signed);
  if (response.status === 400) return "rejected";
  const body = (await response.json()) as VerifyResponse;
  return { isValid: body.isValid, invalidReason: body.invalidReason };
}

/** Our facilitator's settle answer over HTTP, whole. */
export async function oursSettleResponse(url: string, signed: Signed): Promise<SettleResponse | "rejected"> {
  const response = await post(url, "settle", signed);
  if (response.status === 400) return "rejected";
  return (await response.json()) as SettleResponse;
}

type Official = {
  verify(p: PaymentPayload, r: PaymentRequirements): Promise<VerifyResponse>;
  settle(p: PaymentPayload, r: PaymentRequirements): Promise<SettleResponse>;
};

/** The official facilitator's verdict; it throws on malformed input (its HTTP wrapper answers 500). */
export async function officialVerify(official: Official, signed: Signed): Promise<Verdict> {
  try {
    const result = await official.verify(signed.payload, signed.requirements);
    return { isValid: result.isValid, invalidReason: result.invalidReason };
  } catch {
    return "rejected";
  }
}

export async function officialSettleResponse(
  official: Official,
  signed: Signed,
): Promise<SettleResponse | "rejected"> {
  try {
    return await official.settle(signed.payload, signed.requirements);
  } catch {
    return "rejected";
  }
}

/**
 * A settle answer as compared: success and the reason's code. A send error's reason carries the node's
 * message after a colon (`invalid_exact_evm_transaction_failed: …`), which differs between viem's words and
 * ours; the code before it is what clients act on.
 */
export function settlement(response: SettleResponse | "rejected"): Settlement {
  if (response === "rejected") return response;
  return response.success
    ? { success: true }
    : { success: false, errorReason: response.errorReason?.split(":")[0] };
}
