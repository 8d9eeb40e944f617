import {
  decodeFunctionResult,
  encodeAbiParameters,
  encodeFunctionData,
  type Hex,
  keccak256,
  parseTransaction,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { MULTICALL3_ADDRESS, mockUsdcAbi, multicall3Abi, USDC_ADDRESS } from "../../src/chain/index.ts";
import {
  aggregate3CallData,
  authorizationStateCall,
  balanceOfCall,
  DOMAIN_SEPARATOR_CALL,
  decodeAggregate3,
  NAME_CALL,
  transferCallData,
  VERSION_CALL,
} from "../../src/facilitator/exact-evm/abi.ts";
import { signEip1559Call } from "../../src/facilitator/exact-evm/transaction.ts";
import { parseExactEvmPayload } from "../../src/protocol/index.ts";
import { signPayment, usdcRequirements } from "../support/payments.ts";

const payer = generatePrivateKey();
const payee = privateKeyToAccount(generatePrivateKey()).address;

function exactPayload(amount = 12_345n) {
  return parseExactEvmPayload(signPayment(payer, usdcRequirements(payee, amount)).payload);
}

describe("hand-written ABI codecs equal viem's", () => {
  it("transferWithAuthorization, both overloads", () => {
    const exact = exactPayload();
    const a = exact.authorization;
    const args = [
      a.from,
      a.to,
      BigInt(a.value),
      BigInt(a.validAfter),
      BigInt(a.validBefore),
      a.nonce,
    ] as const;
    const v = Number.parseInt(exact.signature.slice(130), 16);
    expect(transferCallData(exact)).toBe(
      encodeFunctionData({
        abi: mockUsdcAbi,
        functionName: "transferWithAuthorization",
        args: [...args, v, `0x${exact.signature.slice(2, 66)}`, `0x${exact.signature.slice(66, 130)}`],
      }),
    );
    const contractSignature = `0x${"ab".repeat(97)}` as Hex;
    expect(transferCallData({ ...exact, signature: contractSignature })).toBe(
      encodeFunctionData({
        abi: mockUsdcAbi,
        functionName: "transferWithAuthorization",
        args: [...args, contractSignature],
      }),
    );
  });

  it("the reads", () => {
    const { from, nonce } = exactPayload().authorization;
    expect(authorizationStateCall(from, nonce)).toBe(
      encodeFunctionData({ abi: mockUsdcAbi, functionName: "authorizationState", args: [from, nonce] }),
    );
    expect(balanceOfCall(from)).toBe(
      encodeFunctionData({ abi: mockUsdcAbi, functionName: "balanceOf", args: [from] }),
    );
    expect(NAME_CALL).toBe(encodeFunctionData({ abi: mockUsdcAbi, functionName: "name" }));
    expect(VERSION_CALL).toBe(encodeFunctionData({ abi: mockUsdcAbi, functionName: "version" }));
    expect(DOMAIN_SEPARATOR_CALL).toBe(
      encodeFunctionData({ abi: mockUsdcAbi, functionName: "DOMAIN_SEPARATOR" }),
    );
  });

  it("aggregate3 calldata, with calls of every length", () => {
    const calls = [
      { target: USDC_ADDRESS, allowFailure: true, callData: NAME_CALL },
      { target: MULTICALL3_ADDRESS, allowFailure: false, callData: "0x" as Hex },
      { target: USDC_ADDRESS, allowFailure: true, callData: transferCallData(exactPayload(1n)) },
      { target: USDC_ADDRESS, allowFailure: false, callData: `0x${"01".repeat(33)}` as Hex },
    ];
    expect(aggregate3CallData(calls)).toBe(
      encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3", args: [calls] }),
    );
  });

  it("aggregate3 results", () => {
    const results = [
      { success: true, returnData: `0x${"11".repeat(32)}` as Hex },
      { success: false, returnData: "0x" as Hex },
      { success: true, returnData: `0x${"22".repeat(70)}` as Hex },
    ];
    const outputs = multicall3Abi.find(
      (item) => item.type === "function" && item.name === "aggregate3",
    )?.outputs;
    if (!outputs) throw new Error("aggregate3 outputs");
    const data = encodeAbiParameters(outputs, [results]);
    expect(decodeAggregate3(data)).toEqual(results);
    expect(decodeAggregate3(data)).toEqual(
      decodeFunctionResult({ abi: multicall3Abi, functionName: "aggregate3", data }),
    );
    expect(() => decodeAggregate3(data.slice(0, 200) as Hex)).toThrow(RangeError);
  });
});

describe("relayer transaction signing equals viem's", () => {
  it.each([
    ["a single settlement", 1, 0],
    ["a large batch, nonce 0x80", 150, 0x80],
    ["a huge nonce and fees", 3, 2 ** 40],
  ])("%s", async (_, settlements, nonce) => {
    const key = generatePrivateKey();
    const calls = Array.from({ length: settlements }, (_, i) => ({
      target: USDC_ADDRESS,
      allowFailure: true,
      callData: transferCallData(exactPayload(BigInt(i + 1))),
    }));
    const tx = {
      chainId: 8453,
      nonce,
      maxPriorityFeePerGas: 1_000_000n,
      maxFeePerGas: 2n * 10n ** 18n + 7n,
      gas: 40_000n + 80_000n * BigInt(settlements),
      to: MULTICALL3_ADDRESS,
      data: aggregate3CallData(calls),
    };
    const expected = await privateKeyToAccount(key).signTransaction({ type: "eip1559", ...tx });
    const signed = signEip1559Call(key, tx);
    expect(signed.serialized).toBe(expected);
    expect(signed.hash).toBe(keccak256(expected));
    expect(parseTransaction(signed.serialized)).toMatchObject({
      nonce,
      to: MULTICALL3_ADDRESS.toLowerCase(),
    });
  });
});
