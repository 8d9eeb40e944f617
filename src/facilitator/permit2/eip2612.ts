import { getAddress, type Hex } from "viem";
import { type PaymentPayload, PERMIT2_ADDRESS, type X402ErrorCode } from "../../protocol/index.ts";
import type { Eip2612Permit } from "./proxy-calls.ts";

/**
 * The `eip2612GasSponsoring` extension of a Permit2 payment: a payer without a Permit2 allowance signs an
 * EIP-2612 `permit(owner, Permit2, amount)` beside the Permit2 transfer, and the facilitator settles with
 * `settleWithPermit`, which applies the permit first. Read and checked as the SDK does
 * (`extractEip2612GasSponsoringInfo`, `validateEip2612PermitForPayment`).
 */
export const EIP2612_GAS_SPONSORING = "eip2612GasSponsoring";

export type Eip2612Info = {
  from: string;
  asset: string;
  spender: string;
  amount: string;
  nonce: string;
  deadline: string;
  signature: string;
  version: string;
};

const FIELDS = ["from", "asset", "spender", "amount", "nonce", "deadline", "signature", "version"] as const;

/**
 * The extension's `info`, or undefined when the payment has none. As in the SDK, an `info` missing a field
 * (or with one empty) counts as no extension at all: the payment then takes the plain `settle` path.
 */
export function eip2612InfoOf(payment: PaymentPayload): Eip2612Info | undefined {
  const extensions = (payment as { extensions?: unknown }).extensions;
  if (typeof extensions !== "object" || extensions === null) return undefined;
  const info = (extensions as Record<string, { info?: unknown } | undefined>)[EIP2612_GAS_SPONSORING]?.info;
  if (typeof info !== "object" || info === null) return undefined;
  const record = info as Record<string, unknown>;
  for (const field of FIELDS) if (!record[field]) return undefined;
  return record as Eip2612Info;
}

const ADDRESS = /^0x[a-fA-F0-9]{40}$/;
const NUMERIC = /^[0-9]+$/;
const HEX = /^0x[a-fA-F0-9]+$/;
const VERSION = /^[0-9]+(\.[0-9]+)*$/;

/** The SDK's field checks of the extension against the payment, in its order; undefined when they pass. */
export function checkEip2612(
  info: Eip2612Info,
  payer: string,
  asset: string,
  nowSeconds: number,
): X402ErrorCode | undefined {
  const wellFormed =
    typeof info.from === "string" &&
    ADDRESS.test(info.from) &&
    typeof info.asset === "string" &&
    ADDRESS.test(info.asset) &&
    typeof info.spender === "string" &&
    ADDRESS.test(info.spender) &&
    typeof info.amount === "string" &&
    NUMERIC.test(info.amount) &&
    typeof info.nonce === "string" &&
    NUMERIC.test(info.nonce) &&
    typeof info.deadline === "string" &&
    NUMERIC.test(info.deadline) &&
    typeof info.signature === "string" &&
    HEX.test(info.signature) &&
    typeof info.version === "string" &&
    VERSION.test(info.version);
  if (!wellFormed) return "invalid_eip2612_extension_format";
  if (getAddress(info.from) !== getAddress(payer)) return "eip2612_from_mismatch";
  if (getAddress(info.asset) !== getAddress(asset)) return "eip2612_asset_mismatch";
  if (getAddress(info.spender) !== PERMIT2_ADDRESS) return "eip2612_spender_not_permit2";
  if (BigInt(info.deadline) < BigInt(nowSeconds + 6)) return "eip2612_deadline_expired";
  return undefined;
}

/**
 * The permit as `settleWithPermit` takes it. A signature that is not 65 bytes cannot be split: the SDK
 * throws there, inside its simulation, which then counts as failed; so undefined here.
 */
export function eip2612Permit(info: Eip2612Info): Eip2612Permit | undefined {
  const hex = info.signature.slice(2);
  if (hex.length !== 130) return undefined;
  return {
    value: BigInt(info.amount),
    deadline: BigInt(info.deadline),
    r: `0x${hex.slice(0, 64)}` as Hex,
    s: `0x${hex.slice(64, 128)}` as Hex,
    v: Number.parseInt(hex.slice(128, 130), 16),
  };
}
