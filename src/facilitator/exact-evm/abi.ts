import { type Address, encodeFunctionData, type Hex, toFunctionSelector } from "viem";
import { mockUsdcAbi } from "../../chain/index.ts";
import type { ExactEvmPayload } from "../../protocol/index.ts";

/**
 * Hand-written ABI codecs for the few fixed shapes on the verify and settle paths. viem's generic
 * `encodeFunctionData` / `decodeFunctionResult` walk the ABI on every call; these are string
 * concatenation over a known layout, and tests hold them byte-equal to viem's.
 */

const sel = (signature: string) => toFunctionSelector(signature).slice(2);

const TRANSFER_VRS = sel(
  "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
);
const AGGREGATE3 = sel("aggregate3((address,bool,bytes)[])");
const AUTHORIZATION_STATE = sel("authorizationState(address,bytes32)");
const BALANCE_OF = sel("balanceOf(address)");

/** Calldata of argument-less reads the verification asks every token. */
export const NAME_CALL: Hex = `0x${sel("name()")}`;
export const VERSION_CALL: Hex = `0x${sel("version()")}`;
export const DOMAIN_SEPARATOR_CALL: Hex = `0x${sel("DOMAIN_SEPARATOR()")}`;

const ZERO_WORD = "0".repeat(64);

function addressWord(address: string): string {
  return address.slice(2).toLowerCase().padStart(64, "0");
}

function uintWord(value: string | number | bigint): string {
  // Up to 15 decimal digits a number is exact, which spares the BigInt for amounts, times and offsets.
  if (typeof value === "number") return value.toString(16).padStart(64, "0");
  if (typeof value === "string" && value.length <= 15) return Number(value).toString(16).padStart(64, "0");
  return BigInt(value).toString(16).padStart(64, "0");
}

function bytes32Word(value: string): string {
  return value.slice(2).toLowerCase();
}

/** `transferWithAuthorization` calldata: the v,r,s overload for 65-byte ECDSA, the bytes overload otherwise (ERC-1271). */
export function transferCallData({ authorization: a, signature }: ExactEvmPayload): Hex {
  if (signature.length === 132) {
    // v goes to the token as signed, as the reference does: a 0/1 parity byte is the signer's to get
    // right, and USDC refuses it on chain.
    const v = Number.parseInt(signature.slice(130), 16);
    return `0x${TRANSFER_VRS}${addressWord(a.from)}${addressWord(a.to)}${uintWord(a.value)}${uintWord(
      a.validAfter,
    )}${uintWord(a.validBefore)}${bytes32Word(a.nonce)}${uintWord(v)}${signature
      .slice(2, 66)
      .toLowerCase()}${signature.slice(66, 130).toLowerCase()}`;
  }
  return encodeFunctionData({
    abi: mockUsdcAbi,
    functionName: "transferWithAuthorization",
    args: [a.from, a.to, BigInt(a.value), BigInt(a.validAfter), BigInt(a.validBefore), a.nonce, signature],
  });
}

export function authorizationStateCall(authorizer: Address, nonce: Hex): Hex {
  return `0x${AUTHORIZATION_STATE}${addressWord(authorizer)}${bytes32Word(nonce)}`;
}

export function balanceOfCall(account: Address): Hex {
  return `0x${BALANCE_OF}${addressWord(account)}`;
}

export type Call3 = { target: Address; allowFailure: boolean; callData: Hex };

/** Multicall3 `aggregate3((address target, bool allowFailure, bytes callData)[])` calldata. */
export function aggregate3CallData(calls: readonly Call3[]): Hex {
  const n = calls.length;
  const offsets: string[] = [];
  const tuples: string[] = [];
  let offset = 32 * n;
  for (const call of calls) {
    offsets.push(uintWord(offset));
    const data = call.callData.slice(2).toLowerCase();
    const length = data.length / 2;
    const padded = Math.ceil(length / 32) * 64;
    tuples.push(
      `${addressWord(call.target)}${call.allowFailure ? uintWord(1) : ZERO_WORD}${uintWord(96)}${uintWord(
        length,
      )}${data.padEnd(padded, "0")}`,
    );
    offset += 128 + padded / 2;
  }
  return `0x${AGGREGATE3}${uintWord(32)}${uintWord(n)}${offsets.join("")}${tuples.join("")}`;
}

export type Call3Result = { success: boolean; returnData: Hex };

/** Decodes what `aggregate3` returns, `(bool success, bytes returnData)[]`; throws on malformed data. */
export function decodeAggregate3(data: Hex): Call3Result[] {
  const hex = data.slice(2);
  const word = (byteOffset: number): number => {
    const start = byteOffset * 2;
    if (start + 64 > hex.length) throw new RangeError("aggregate3 result is truncated");
    const value = Number.parseInt(hex.slice(start, start + 64), 16);
    if (!Number.isSafeInteger(value)) throw new RangeError("aggregate3 result has an oversized word");
    return value;
  };
  const arrayStart = word(0);
  const n = word(arrayStart);
  const head = arrayStart + 32;
  const results: Call3Result[] = [];
  for (let i = 0; i < n; i++) {
    const tuple = head + word(head + 32 * i);
    const success = word(tuple) !== 0;
    const bytesAt = tuple + word(tuple + 32);
    const length = word(bytesAt);
    const start = (bytesAt + 32) * 2;
    if (start + length * 2 > hex.length) throw new RangeError("aggregate3 result is truncated");
    results.push({ success, returnData: `0x${hex.slice(start, start + length * 2)}` });
  }
  return results;
}
