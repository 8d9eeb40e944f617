import { x402Client } from "@x402/core/client";
import type { PaymentRequirements } from "@x402/core/types";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { type Address, erc20Abi, type Hex, hashDomain, maxUint256, toFunctionSelector } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BASE_NETWORK,
  type Devnet,
  MOCK_ERC20_ADDRESS,
  MOCK_ERC20_DECIMALS,
  MOCK_ERC20_NAME,
  MOCK_ERC20_VERSION,
  mockErc20Abi,
  PERMIT2_ADDRESS,
  startDevnet,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
} from "../../src/chain/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialFacilitator } from "../support/official-facilitator.ts";

let devnet: Devnet;
beforeAll(async () => {
  // The devnet places the second token itself.
  devnet = await startDevnet({ accounts: 4 });
});
afterAll(() => devnet?.stop());

const balanceOf = (address: Address) =>
  devnet.client.readContract({
    address: MOCK_ERC20_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

async function send(privateKey: Hex, functionName: "mint" | "approve", args: readonly [Address, bigint]) {
  const hash = await devnet.client.writeContract({
    account: privateKeyToAccount(privateKey),
    chain: null,
    address: MOCK_ERC20_ADDRESS,
    abi: mockErc20Abi,
    functionName,
    args,
  });
  const receipt = await devnet.client.waitForTransactionReceipt({ hash });
  expect(receipt.status).toBe("success");
}

/** `exact` requirements in the mock token, as a server pricing in it would publish them. */
function requirements(payTo: Address, amount: bigint, permit2: boolean): PaymentRequirements {
  return {
    scheme: "exact",
    network: BASE_NETWORK,
    asset: MOCK_ERC20_ADDRESS,
    amount: String(amount),
    payTo,
    maxTimeoutSeconds: 300,
    extra: {
      name: MOCK_ERC20_NAME,
      version: MOCK_ERC20_VERSION,
      ...(permit2 ? { assetTransferMethod: "permit2" } : {}),
    },
  };
}

/** The official client; spend controls off, since the token is none of `@x402/evm`'s default assets. */
function officialClient(privateKey: Hex) {
  const client = new x402Client();
  registerExactEvmScheme(client, { signer: privateKeyToAccount(privateKey) });
  client.setSpendControls(false);
  return client;
}

const paymentRequired = (accepted: PaymentRequirements) => ({
  x402Version: 2 as const,
  resource: { url: "http://127.0.0.1:4021/data", description: "data", mimeType: "application/json" },
  accepts: [accepted],
});

describe("the second token (MockERC20) on the devnet", () => {
  it("is a 6-decimal EIP-2612 token at its address, without EIP-3009", async () => {
    const read = <F extends "name" | "decimals" | "version" | "DOMAIN_SEPARATOR">(functionName: F) =>
      devnet.client.readContract({ address: MOCK_ERC20_ADDRESS, abi: mockErc20Abi, functionName });
    expect(await read("name")).toBe(MOCK_ERC20_NAME);
    expect(await read("version")).toBe(MOCK_ERC20_VERSION);
    expect(await read("decimals")).toBe(MOCK_ERC20_DECIMALS);
    expect(await read("DOMAIN_SEPARATOR")).toBe(
      hashDomain({
        domain: {
          name: MOCK_ERC20_NAME,
          version: MOCK_ERC20_VERSION,
          chainId: BigInt(devnet.chainId),
          verifyingContract: MOCK_ERC20_ADDRESS,
        },
        types: {
          EIP712Domain: [
            { name: "name", type: "string" },
            { name: "version", type: "string" },
            { name: "chainId", type: "uint256" },
            { name: "verifyingContract", type: "address" },
          ],
        },
      }),
    );
    const code = (await devnet.client.getCode({ address: MOCK_ERC20_ADDRESS })) ?? "0x";
    for (const signature of [
      "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
      "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
      "authorizationState(address,bytes32)",
    ]) {
      expect(code.includes(toFunctionSelector(signature).slice(2)), signature).toBe(false);
    }
    expect(
      code.includes(
        toFunctionSelector("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)").slice(2),
      ),
    ).toBe(true);
  });

  it("is paid by the official exact client over Permit2 and settled by the official facilitator", async () => {
    const [payer, payee, relayer] = [0, 1, 2].map((i) => devnetAccount(devnet, i));
    if (!payer || !payee || !relayer) throw new Error("accounts");
    await send(payer.privateKey, "mint", [payer.address, 50_000n]);
    await send(payer.privateKey, "approve", [PERMIT2_ADDRESS, maxUint256]);
    const accepted = requirements(payee.address, 1_000n, true);
    const payment = await officialClient(payer.privateKey).createPaymentPayload(paymentRequired(accepted));
    expect(payment.payload).toHaveProperty("permit2Authorization");
    const before = await Promise.all([balanceOf(payer.address), balanceOf(payee.address)]);

    const facilitator = officialFacilitator(devnet.rpcUrl, devnet.chainId, relayer.privateKey);
    expect(await facilitator.verify(payment, accepted)).toMatchObject({
      isValid: true,
      payer: payer.address,
    });
    const settled = await facilitator.settle(payment, accepted);
    expect(settled).toMatchObject({ success: true });
    const receipt = await devnet.client.getTransactionReceipt({ hash: settled.transaction as Hex });
    expect(receipt.to?.toLowerCase()).toBe(X402_EXACT_PERMIT2_PROXY_ADDRESS.toLowerCase());
    expect(await Promise.all([balanceOf(payer.address), balanceOf(payee.address)])).toEqual([
      (before[0] ?? 0n) - 1_000n,
      (before[1] ?? 0n) + 1_000n,
    ]);
  });

  it("cannot be paid by EIP-3009: the official facilitator settles nothing", async () => {
    const [payer, payee, relayer] = [3, 1, 2].map((i) => devnetAccount(devnet, i));
    if (!payer || !payee || !relayer) throw new Error("accounts");
    await send(payer.privateKey, "mint", [payer.address, 50_000n]);
    const accepted = requirements(payee.address, 1_000n, false);
    const payment = await officialClient(payer.privateKey).createPaymentPayload(paymentRequired(accepted));
    expect(payment.payload).toHaveProperty("authorization");
    const before = await Promise.all([balanceOf(payer.address), balanceOf(payee.address)]);

    const facilitator = officialFacilitator(devnet.rpcUrl, devnet.chainId, relayer.privateKey);
    const verified = await facilitator.verify(payment, accepted);
    // The facilitator's simulation finds no transferWithAuthorization and names the reason.
    expect(verified).toMatchObject({
      isValid: false,
      invalidReason: "invalid_exact_evm_eip3009_not_supported",
    });
    expect(await facilitator.settle(payment, accepted)).toMatchObject({ success: false });
    expect(await Promise.all([balanceOf(payer.address), balanceOf(payee.address)])).toEqual(before);
  });
});
