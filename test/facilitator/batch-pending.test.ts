import { BATCH_SETTLEMENT_DOMAIN, voucherTypes } from "@x402/evm";
import { encodeAbiParameters, erc20Abi, type Hex, keccak256 } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BASE_NETWORK,
  type Devnet,
  startDevnet,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
  X402_BATCH_SETTLEMENT_ADDRESS,
  x402BatchSettlementAbi,
} from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import {
  type ChannelConfig,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  type PaymentRequirements,
  type SettleResponse,
} from "../../src/protocol/index.ts";
import { devnetAccount } from "../support/accounts.ts";

// A deposit or claim whose receipt does not come in time is `settlement_pending` with its hash; asked again
// while unmined, the same transaction (nothing broadcast twice); once mined, its outcome.

let devnet: Devnet;
let facilitator: Facilitator;
const account = (index: number) => devnetAccount(devnet, index);

// Accounts: 0 the payer, 1 the payee, 2 our relayer, 3 the receiver authorizer.
beforeAll(async () => {
  devnet = await startDevnet({ accounts: 4 });
  facilitator = await startFacilitator({
    schemes: [],
    batchSettlement: {
      rpcUrl: devnet.rpcUrl,
      chainId: devnet.chainId,
      relayerKeys: [account(2).privateKey],
      receiverAuthorizerKey: account(3).privateKey,
      receiptTimeoutMs: 300,
    },
  });
});
afterAll(async () => {
  await facilitator?.stop();
  await devnet?.stop();
});

const channels = async (channelId: Hex) => {
  const [balance, totalClaimed] = await devnet.client.readContract({
    address: X402_BATCH_SETTLEMENT_ADDRESS,
    abi: x402BatchSettlementAbi,
    functionName: "channels",
    args: [channelId],
  });
  return { balance, totalClaimed };
};

async function settle(paymentRequirements: PaymentRequirements, payload: Record<string, unknown>) {
  const response = await fetch(`${facilitator.url}/settle`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      x402Version: 2,
      paymentPayload: { x402Version: 2, accepted: paymentRequirements, payload },
      paymentRequirements,
    }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as SettleResponse;
}

async function whileNotMining<T>(run: () => Promise<T>): Promise<T> {
  await devnet.client.setAutomine(false);
  try {
    return await run();
  } finally {
    await devnet.client.setAutomine(true);
  }
}

describe("batch-settlement transactions while the chain does not mine", () => {
  it("a deposit, then a claim: pending with the hash, the same hash again, then the mined outcome", async () => {
    const payer = privateKeyToAccount(account(0).privateKey);
    const payTo = account(1).address;
    const config: ChannelConfig = {
      payer: payer.address,
      payerAuthorizer: payer.address,
      receiver: payTo,
      receiverAuthorizer: account(3).address,
      token: USDC_ADDRESS,
      withdrawDelay: 900,
      salt: generatePrivateKey(),
    };
    const channelId = await devnet.client.readContract({
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "getChannelId",
      args: [config],
    });
    const domain = {
      ...BATCH_SETTLEMENT_DOMAIN,
      chainId: devnet.chainId,
      verifyingContract: X402_BATCH_SETTLEMENT_ADDRESS,
    };
    const voucherSignature = (max: bigint) =>
      payer.signTypedData({
        domain,
        types: voucherTypes,
        primaryType: "Voucher",
        message: { channelId, maxClaimableAmount: max },
      });
    const salt = generatePrivateKey();
    const validBefore = BigInt(Math.floor(Date.now() / 1000) + 300);
    const signature = await payer.signTypedData({
      domain: {
        name: USDC_NAME,
        version: USDC_VERSION,
        chainId: devnet.chainId,
        verifyingContract: USDC_ADDRESS,
      },
      types: {
        ReceiveWithAuthorization: [
          { name: "from", type: "address" },
          { name: "to", type: "address" },
          { name: "value", type: "uint256" },
          { name: "validAfter", type: "uint256" },
          { name: "validBefore", type: "uint256" },
          { name: "nonce", type: "bytes32" },
        ],
      },
      primaryType: "ReceiveWithAuthorization",
      message: {
        from: payer.address,
        to: ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        value: 10_000n,
        validAfter: 0n,
        validBefore,
        nonce: keccak256(
          encodeAbiParameters([{ type: "bytes32" }, { type: "uint256" }], [channelId, BigInt(salt)]),
        ),
      },
    });
    const requirements: PaymentRequirements = {
      scheme: "batch-settlement",
      network: BASE_NETWORK,
      asset: USDC_ADDRESS,
      amount: "1000",
      payTo,
      maxTimeoutSeconds: 300,
      extra: {
        receiverAuthorizer: account(3).address,
        withdrawDelay: 900,
        name: USDC_NAME,
        version: USDC_VERSION,
      },
    };
    const deposit = {
      type: "deposit",
      channelConfig: config,
      voucher: { channelId, maxClaimableAmount: "1000", signature: await voucherSignature(1_000n) },
      deposit: {
        amount: "10000",
        authorization: {
          erc3009Authorization: { validAfter: "0", validBefore: validBefore.toString(), salt, signature },
        },
      },
    };
    const payerBefore = await devnet.client.readContract({
      address: USDC_ADDRESS,
      abi: erc20Abi,
      functionName: "balanceOf",
      args: [payer.address],
    });

    await whileNotMining(async () => {
      const pending = await settle(requirements, deposit);
      expect(pending).toMatchObject({
        success: false,
        errorReason: "settlement_pending",
        transaction: expect.stringMatching(/^0x[0-9a-f]{64}$/),
      });
      expect(await settle(requirements, deposit)).toMatchObject({
        success: false,
        errorReason: "settlement_pending",
        transaction: pending.transaction,
      });
      expect((await devnet.status()).pending).toBe(1);
      await devnet.client.mine({ blocks: 1 });
      expect(await settle(requirements, deposit)).toMatchObject({
        success: true,
        transaction: pending.transaction,
        amount: "10000",
        extra: { channelState: { channelId, balance: "10000", totalClaimed: "0" }, duplicate: true },
      });
    });
    expect(await channels(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });
    expect(
      await devnet.client.readContract({
        address: USDC_ADDRESS,
        abi: erc20Abi,
        functionName: "balanceOf",
        args: [payer.address],
      }),
    ).toBe(payerBefore - 10_000n);

    const manager = { ...requirements, amount: "0", maxTimeoutSeconds: 0, extra: {} };
    const claim = {
      type: "claim",
      claims: [
        {
          voucher: { channel: config, maxClaimableAmount: "1000" },
          signature: await voucherSignature(1_000n),
          totalClaimed: "1000",
        },
      ],
    };
    await whileNotMining(async () => {
      const pending = await settle(manager, claim);
      expect(pending).toMatchObject({ success: false, errorReason: "settlement_pending" });
      expect(await settle(manager, claim)).toMatchObject({
        errorReason: "settlement_pending",
        transaction: pending.transaction,
      });
      expect((await devnet.status()).pending).toBe(1);
      await devnet.client.mine({ blocks: 1 });
      expect(await settle(manager, claim)).toMatchObject({ success: true, transaction: pending.transaction });
    });
    expect(await channels(channelId)).toEqual({ balance: 10_000n, totalClaimed: 1_000n });
  });
});
