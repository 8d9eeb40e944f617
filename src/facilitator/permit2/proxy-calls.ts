import { encodeFunctionData, getAddress, type Hex, parseErc6492Signature, toFunctionSelector } from "viem";
// Not re-exported by src/chain/index.ts (yet); the generated artifact is the source of truth either way.
import { x402ExactPermit2ProxyAbi, x402UptoPermit2ProxyAbi } from "../../chain/index.ts";
import {
  PERMIT2_ADDRESS,
  PERMIT2_SPENDER,
  type Permit2Kind,
  type Permit2Payload,
} from "../../protocol/index.ts";

/**
 * Calldata of the x402 Permit2 proxies' calls, as the SDK builds its arguments (`buildExactPermit2SettleArgs`,
 * `buildUptoPermit2SettleArgs`): an ERC-6492 wrapper is taken off the signature, since Permit2 checks the
 * bare one against the (by then deployed) wallet.
 */

/** The EIP-2612 permit `settleWithPermit` runs first, in the proxy's tuple order. */
export type Eip2612Permit = { value: bigint; deadline: bigint; r: Hex; s: Hex; v: number };

/** The proxy a payment of `kind` is settled through. */
export const proxyOf = (kind: Permit2Kind) => PERMIT2_SPENDER[kind];

export type SettleCall = {
  /** upto only: what is transferred, at most the signed maximum. */
  amount?: bigint;
  /** With a sponsored allowance: `settleWithPermit`. */
  permit2612?: Eip2612Permit;
};

export function settleCallData(kind: Permit2Kind, payload: Permit2Payload, call: SettleCall = {}): Hex {
  const a = payload.permit2Authorization;
  const permit = {
    permitted: { token: getAddress(a.permitted.token), amount: BigInt(a.permitted.amount) },
    nonce: BigInt(a.nonce),
    deadline: BigInt(a.deadline),
  };
  const owner = getAddress(a.from);
  const { signature } = parseErc6492Signature(payload.signature);
  const to = getAddress(a.witness.to);
  const validAfter = BigInt(a.witness.validAfter);
  if (kind === "exact") {
    const witness = { to, validAfter };
    return call.permit2612
      ? encodeFunctionData({
          abi: x402ExactPermit2ProxyAbi,
          functionName: "settleWithPermit",
          args: [call.permit2612, permit, owner, witness, signature],
        })
      : encodeFunctionData({
          abi: x402ExactPermit2ProxyAbi,
          functionName: "settle",
          args: [permit, owner, witness, signature],
        });
  }
  const witness = { to, facilitator: getAddress(a.witness.facilitator ?? "0x"), validAfter };
  const amount = call.amount ?? permit.permitted.amount;
  return call.permit2612
    ? encodeFunctionData({
        abi: x402UptoPermit2ProxyAbi,
        functionName: "settleWithPermit",
        args: [call.permit2612, permit, amount, owner, witness, signature],
      })
    : encodeFunctionData({
        abi: x402UptoPermit2ProxyAbi,
        functionName: "settle",
        args: [permit, amount, owner, witness, signature],
      });
}

/** `PERMIT2()`: the diagnosis reads it to tell whether the proxy is there at all. */
export const PERMIT2_CALL: Hex = encodeFunctionData({
  abi: x402ExactPermit2ProxyAbi,
  functionName: "PERMIT2",
});

const ALLOWANCE = toFunctionSelector("allowance(address,address)");
const PERMIT2_WORD = PERMIT2_ADDRESS.slice(2).toLowerCase().padStart(64, "0");

/** `allowance(owner, Permit2)` of an ERC-20. */
export function permit2AllowanceCall(owner: string): Hex {
  return `${ALLOWANCE}${owner.slice(2).toLowerCase().padStart(64, "0")}${PERMIT2_WORD}`;
}
