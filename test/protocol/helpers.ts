import { randomBytes } from "node:crypto";
import { type Address, getAddress, type Hex } from "viem";
import type { ExactEvmAuthorization } from "../../src/protocol/index.ts";

export const BASE_USDC = {
  name: "USD Coin",
  version: "2",
  chainId: 8453,
  verifyingContract: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
} as const;

export const UINT256_MAX = 2n ** 256n - 1n;

export function randomHex(bytes: number): Hex {
  return `0x${randomBytes(bytes).toString("hex")}`;
}

/** A random uint256 whose size is itself random, so short, mid-size and full-width values all occur. */
export function randomUint256(): bigint {
  const bytes = 1 + ((randomBytes(1)[0] as number) % 32);
  return BigInt(randomHex(bytes));
}

export function randomAddress(): Address {
  return randomHex(20);
}

export function randomAuthorization(): ExactEvmAuthorization {
  return {
    from: getAddress(randomAddress()),
    to: randomAddress(),
    value: randomUint256().toString(),
    validAfter: randomUint256().toString(),
    validBefore: randomUint256().toString(),
    nonce: randomHex(32),
  };
}
