import { x402Client } from "@x402/core/client";
import { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentRequired } from "@x402/core/types";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme as UptoClient } from "@x402/evm/upto/client";
import { UptoEvmScheme as UptoFacilitator } from "@x402/evm/upto/facilitator";
import { erc20Abi, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  approvePermit2,
  type Devnet,
  PERMIT2_ADDRESS,
  permit2Abi,
  startDevnet,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
  x402ExactPermit2ProxyAbi,
} from "../../src/chain/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialFacilitator, officialFacilitatorSigner } from "../support/official-facilitator.ts";
import { usdcRequirements } from "../support/payments.ts";

let devnet: Devnet;
beforeAll(async () => {
  devnet = await startDevnet({ accounts: 4 });
});
afterAll(() => devnet?.stop());

const balanceOf = (address: Hex) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

/** The payer's `approve(Permit2, max)` of USDC, which every Permit2 path needs unless a permit sponsors it. */

/** A 402 asking for `amount` of USDC by Permit2, as an official server declares it. */
function permit2Required(payTo: Hex, amount: bigint): PaymentRequired {
  return {
    x402Version: 2,
    resource: { url: "http://127.0.0.1:4021/weather", description: "weather", mimeType: "application/json" },
    accepts: [
      usdcRequirements(payTo, amount, {
        extra: { name: USDC_NAME, version: USDC_VERSION, assetTransferMethod: "permit2" },
      }),
    ],
  };
}

describe("Permit2 and the exact Permit2 proxy on the devnet", () => {
  it("sit at their canonical addresses, with Permit2's domain separator as on Base", async () => {
    expect(
      await devnet.client.readContract({
        address: PERMIT2_ADDRESS,
        abi: permit2Abi,
        functionName: "DOMAIN_SEPARATOR",
      }),
    ).toBe("0x3b6f35e4fce979ef8eac3bcdc8c3fc38fe7911bb0c69c8fe72bf1fd1a17e6f07");
    expect(
      await devnet.client.readContract({
        address: X402_EXACT_PERMIT2_PROXY_ADDRESS,
        abi: x402ExactPermit2ProxyAbi,
        functionName: "PERMIT2",
      }),
    ).toBe(PERMIT2_ADDRESS);
  });

  it("carry an exact payment by Permit2 from the official client through the official facilitator", async () => {
    const [payer, payee, relayer] = [
      devnetAccount(devnet, 0),
      devnetAccount(devnet, 1),
      devnetAccount(devnet, 2),
    ];
    const signer = privateKeyToAccount(payer.privateKey);
    await approvePermit2(devnet.client, [payer], USDC_ADDRESS, false);
    const client = new x402Client();
    registerExactEvmScheme(client, { signer });
    const required = permit2Required(payee.address, 1_000n);
    const requirements = required.accepts[0] as PaymentRequired["accepts"][number];
    const payment = await client.createPaymentPayload(required);
    expect(payment.payload).toHaveProperty("permit2Authorization");
    const before = await Promise.all([balanceOf(payer.address), balanceOf(payee.address)]);

    const facilitator = officialFacilitator(devnet.rpcUrl, devnet.chainId, relayer.privateKey);
    expect(await facilitator.verify(payment, requirements)).toMatchObject({
      isValid: true,
      payer: signer.address,
    });
    const settled = await facilitator.settle(payment, requirements);
    expect(settled).toMatchObject({ success: true });
    const receipt = await devnet.client.getTransactionReceipt({ hash: settled.transaction as Hex });
    expect(receipt.to?.toLowerCase()).toBe(X402_EXACT_PERMIT2_PROXY_ADDRESS.toLowerCase());
    expect(await Promise.all([balanceOf(payer.address), balanceOf(payee.address)])).toEqual([
      (before[0] ?? 0n) - 1_000n,
      (before[1] ?? 0n) + 1_000n,
    ]);
    // The same signature again: Permit2's nonce is spent, so nothing moves.
    expect(await facilitator.settle(payment, requirements)).toMatchObject({ success: false });
    expect(await balanceOf(payer.address)).toBe((before[0] ?? 0n) - 1_000n);
  });

  it("tell the official facilitator a payer without a Permit2 allowance needs one", async () => {
    const [payer, payee, relayer] = [
      devnetAccount(devnet, 3),
      devnetAccount(devnet, 1),
      devnetAccount(devnet, 2),
    ];
    const client = new x402Client();
    registerExactEvmScheme(client, { signer: privateKeyToAccount(payer.privateKey) });
    const required = permit2Required(payee.address, 1_000n);
    const payment = await client.createPaymentPayload(required);
    const facilitator = officialFacilitator(devnet.rpcUrl, devnet.chainId, relayer.privateKey);
    expect(
      await facilitator.verify(payment, required.accepts[0] as PaymentRequired["accepts"][number]),
    ).toMatchObject({
      isValid: false,
      invalidReason: "permit2_allowance_required",
    });
  });
});

describe("the upto Permit2 proxy on the devnet", () => {
  it("meters: the official client signs a maximum, the official facilitator settles what was used", async () => {
    const [payer, payee, relayer] = [
      devnetAccount(devnet, 0),
      devnetAccount(devnet, 1),
      devnetAccount(devnet, 2),
    ];
    await approvePermit2(devnet.client, [payer], USDC_ADDRESS, false);
    const facilitator = new x402Facilitator();
    facilitator.register(
      `eip155:${devnet.chainId}`,
      new UptoFacilitator(officialFacilitatorSigner(devnet.rpcUrl, devnet.chainId, relayer.privateKey)),
    );
    const requirements = usdcRequirements(payee.address, 2_000n, {
      scheme: "upto",
      extra: {
        name: USDC_NAME,
        version: USDC_VERSION,
        assetTransferMethod: "permit2",
        facilitatorAddress: relayer.address,
      },
    });
    const client = new x402Client().register(
      `eip155:${devnet.chainId}`,
      new UptoClient(privateKeyToAccount(payer.privateKey)),
    );
    const payment = await client.createPaymentPayload({
      x402Version: 2,
      resource: {
        url: "http://127.0.0.1:4021/inference",
        description: "tokens",
        mimeType: "application/json",
      },
      accepts: [requirements],
    });
    expect(await facilitator.verify(payment, requirements)).toMatchObject({ isValid: true });
    const before = await Promise.all([balanceOf(payer.address), balanceOf(payee.address)]);

    const settled = await facilitator.settle(payment, { ...requirements, amount: "1200" });
    expect(settled).toMatchObject({ success: true, amount: "1200" });
    const receipt = await devnet.client.getTransactionReceipt({ hash: settled.transaction as Hex });
    expect(receipt.to?.toLowerCase()).toBe(X402_UPTO_PERMIT2_PROXY_ADDRESS.toLowerCase());
    expect(await Promise.all([balanceOf(payer.address), balanceOf(payee.address)])).toEqual([
      (before[0] ?? 0n) - 1_200n,
      (before[1] ?? 0n) + 1_200n,
    ]);
    // More than the signed maximum is never settled.
    expect(await facilitator.settle(payment, { ...requirements, amount: "2001" })).toMatchObject({
      success: false,
    });
  });
});
