import { claimBatchTypes, refundTypes, voucherTypes } from "@x402/evm";
import { type Hex, hashTypedData, keccak256, toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Devnet, startDevnet, USDC_ADDRESS, x402BatchSettlementAbi } from "../../src/chain/index.ts";
import { batchSettleActionOf, parseServerBatchPayload } from "../../src/protocol/batch-settlement.ts";
import {
  batchDomain,
  type ChannelConfig,
  channelIdOf,
  claimBatchTypedData,
  erc3009DepositNonce,
  parseBatchPayload,
  refundTypedData,
  voucherDigest,
  X402_BATCH_SETTLEMENT_ADDRESS,
} from "../../src/protocol/index.ts";

// The channel id and the digests are computed off chain by every party; the contract recomputes them on
// claim, refund and deposit, so ours must equal its views byte for byte on the devnet's chain id.

let devnet: Devnet;
beforeAll(async () => {
  devnet = await startDevnet({ accounts: 2 });
});
afterAll(async () => {
  await devnet?.stop();
});

const read = <F extends "getChannelId" | "getVoucherDigest" | "getRefundDigest" | "getClaimBatchDigest">(
  functionName: F,
  args: readonly unknown[],
) =>
  devnet.client.readContract({
    address: X402_BATCH_SETTLEMENT_ADDRESS,
    abi: x402BatchSettlementAbi,
    functionName,
    args,
  } as Parameters<typeof devnet.client.readContract>[0]) as Promise<Hex>;

const config = (overrides: Partial<ChannelConfig> = {}): ChannelConfig => ({
  payer: "0x1111111111111111111111111111111111111111",
  payerAuthorizer: "0x2222222222222222222222222222222222222222",
  receiver: "0x3333333333333333333333333333333333333333",
  receiverAuthorizer: "0x4444444444444444444444444444444444444444",
  token: USDC_ADDRESS,
  withdrawDelay: 900,
  salt: keccak256(toHex("salt")),
  ...overrides,
});

describe("batch-settlement typed data against the contract's views", () => {
  it("channelIdOf equals getChannelId, for lowercase addresses and other delays too", async () => {
    for (const c of [
      config(),
      config({ payerAuthorizer: "0x0000000000000000000000000000000000000000", withdrawDelay: 2_592_000 }),
      config({ payer: "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd", salt: `0x${"00".repeat(32)}` }),
    ]) {
      const onChain = await read("getChannelId", [c]);
      expect(channelIdOf(devnet.chainId, c)).toBe(onChain);
    }
    // Distinct configs, distinct channels: the salt and the delay are bound in.
    expect(channelIdOf(devnet.chainId, config())).not.toBe(
      channelIdOf(devnet.chainId, config({ withdrawDelay: 901 })),
    );
  });

  it("voucherDigest equals getVoucherDigest and the SDK's voucherTypes", async () => {
    const channelId = channelIdOf(devnet.chainId, config());
    for (const max of [0n, 1n, 1_234_567n, 2n ** 128n - 1n]) {
      expect(voucherDigest(devnet.chainId, channelId, max)).toBe(
        await read("getVoucherDigest", [channelId, max]),
      );
      expect(voucherDigest(devnet.chainId, channelId, max)).toBe(
        hashTypedData({
          domain: batchDomain(devnet.chainId),
          types: voucherTypes,
          primaryType: "Voucher",
          message: { channelId, maxClaimableAmount: max },
        }),
      );
    }
  });

  it("refund and claim-batch typed data hash to the contract's digests", async () => {
    const c = config();
    const channelId = channelIdOf(devnet.chainId, c);
    const refund = refundTypedData(devnet.chainId, channelId, 3n, 700n);
    expect(hashTypedData(refund)).toBe(await read("getRefundDigest", [channelId, 3n, 700n]));
    expect(hashTypedData({ ...refund, types: refundTypes })).toBe(hashTypedData(refund));

    const claims = [
      { voucher: { channel: c, maxClaimableAmount: "5000" }, signature: "0x01" as Hex, totalClaimed: "4000" },
      {
        voucher: { channel: config({ salt: keccak256(toHex("other")) }), maxClaimableAmount: "9" },
        signature: "0x02" as Hex,
        totalClaimed: "9",
      },
    ];
    const contractClaims = claims.map((row) => ({
      voucher: { channel: row.voucher.channel, maxClaimableAmount: BigInt(row.voucher.maxClaimableAmount) },
      signature: row.signature,
      totalClaimed: BigInt(row.totalClaimed),
    }));
    const typed = claimBatchTypedData(devnet.chainId, claims);
    expect(hashTypedData(typed)).toBe(await read("getClaimBatchDigest", [contractClaims]));
    expect(hashTypedData({ ...typed, types: claimBatchTypes })).toBe(hashTypedData(typed));
    // An empty batch hashes keccak256("") as its root, on both sides.
    expect(hashTypedData(claimBatchTypedData(devnet.chainId, []))).toBe(
      await read("getClaimBatchDigest", [[]]),
    );
  });

  it("the ERC-3009 deposit nonce is keccak256(abi.encode(channelId, uint256(salt)))", () => {
    const channelId = channelIdOf(devnet.chainId, config());
    const salt = `0x${"00".repeat(31)}07` as Hex;
    expect(erc3009DepositNonce(channelId, salt)).toBe(keccak256(`${channelId}${salt.slice(2)}` as Hex));
  });
});

describe("batch-settlement payload parsing", () => {
  const voucher = { channelId: keccak256(toHex("c")), maxClaimableAmount: "10", signature: "0xaa" };

  it("names the first bad field of a client payload", () => {
    expect(() => parseBatchPayload({ type: "voucher", channelConfig: config(), voucher })).not.toThrow();
    expect(() =>
      parseBatchPayload({ type: "voucher", channelConfig: { ...config(), receiver: "0x12" }, voucher }),
    ).toThrow(/channelConfig.receiver/);
    expect(() =>
      parseBatchPayload({ type: "refund", channelConfig: config(), voucher, amount: "-1" }),
    ).toThrow(/payload.amount/);
  });

  it("tells the server's actions apart by the SDK's shape tests, and parses them", () => {
    const row = {
      voucher: { channel: config(), maxClaimableAmount: "10" },
      signature: "0xaa",
      totalClaimed: "5",
    };
    expect(batchSettleActionOf({ type: "claim", claims: [row] })).toBe("claim");
    expect(batchSettleActionOf({ type: "settle", receiver: config().receiver, token: USDC_ADDRESS })).toBe(
      "settle",
    );
    const refund = {
      type: "refund",
      channelConfig: config(),
      voucher,
      amount: "1",
      refundNonce: "0",
      claims: [],
    };
    expect(batchSettleActionOf(refund)).toBe("refund");
    // A client's refund (no amount, nonce or rows) and a voucher are not settle actions.
    expect(batchSettleActionOf({ type: "refund", channelConfig: config(), voucher })).toBeUndefined();
    expect(batchSettleActionOf({ type: "voucher", channelConfig: config(), voucher })).toBeUndefined();
    expect(() => parseServerBatchPayload(refund)).not.toThrow();
    expect(() => parseServerBatchPayload({ type: "claim", claims: [{ ...row, totalClaimed: "x" }] })).toThrow(
      /claims\[0\]\.totalClaimed/,
    );
  });
});
