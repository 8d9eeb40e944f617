import { x402Client } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { decodeFunctionData, encodeFunctionData, type Hex, parseEventLogs } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  approvePermit2,
  type Devnet,
  MOCK_USDC_ADMIN,
  MULTICALL3_ADDRESS,
  mockUsdcAbi,
  startDevnet,
  USDC_ADDRESS,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
  x402ExactPermit2ProxyAbi,
} from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import type { PaymentRequirements, SettleResponse } from "../../src/protocol/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialFacilitator } from "../support/official-facilitator.ts";
import { postSettle, signPayment, usdcRequirements } from "../support/payments.ts";
import {
  balanceOf,
  nowSeconds,
  officialSettleResponse,
  officialVerify,
  oursSettleResponse,
  oursVerify,
  permit2Requirements,
  type Settlement,
  type Signed,
  settlement,
  signPermit2,
  type Verdict,
  withAuthorization,
  withEip2612,
} from "./permit2-support.ts";

let devnet: Devnet;
let ours: Facilitator;
let official: ReturnType<typeof officialFacilitator>;

// Accounts: 0 and 2 payers with a Permit2 allowance, 3 one without, 4 and 8 payers sponsoring by EIP-2612,
// 1 the payee, 5 our EIP-3009 relayer, 6 our Permit2 relayer, 7 the official facilitator's.
const account = (index: number) => devnetAccount(devnet, index);

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 10 });
  ours = await startFacilitator({
    exact: { rpcUrl: devnet.rpcUrl, chainId: devnet.chainId, relayerKeys: [account(5).privateKey] },
    permit2: { rpcUrl: devnet.rpcUrl, chainId: devnet.chainId, relayerKeys: [account(6).privateKey] },
  });
  official = officialFacilitator(devnet.rpcUrl, devnet.chainId, account(7).privateKey, { upto: true });
  await approvePermit2(devnet.client, [account(0), account(2)], USDC_ADDRESS, devnet.mineOnDemand);
});
afterAll(async () => {
  await ours?.stop();
  await devnet?.stop();
});

async function asAdmin(functionName: "blacklist" | "unBlacklist", args: readonly Hex[]) {
  const data = encodeFunctionData({ abi: mockUsdcAbi, functionName, args } as Parameters<
    typeof encodeFunctionData
  >[0]);
  const hash = await devnet.client.sendUnsignedTransaction({ from: MOCK_USDC_ADMIN, to: USDC_ADDRESS, data });
  await devnet.client.waitForTransactionReceipt({ hash });
}

const req = (overrides: Partial<PaymentRequirements> = {}) =>
  permit2Requirements("exact", account(1).address, 10_000n, undefined, overrides);
const pay = (requirements = req(), options?: Parameters<typeof signPermit2>[2], payer = 0) =>
  signPermit2(account(payer).privateKey, requirements, options);

type Case = {
  name: string;
  expected: Verdict;
  /** Where ours deliberately answers otherwise, and why. */
  ours?: { verdict: Verdict; why: string };
  build: () => Promise<Signed>;
  /** Chain state the case needs, undone by the returned function. */
  around?: () => Promise<() => Promise<void>>;
};

describe("exact by Permit2: verify parity with the official x402Facilitator on the same devnet", () => {
  const cases: Case[] = [
    { name: "a good payment", expected: { isValid: true }, build: () => pay() },
    {
      name: "a good payment from the official client",
      expected: { isValid: true },
      build: async () => {
        const client = new x402Client();
        registerExactEvmScheme(client, { signer: privateKeyToAccount(account(0).privateKey) });
        const requirements = req();
        const payload = await client.createPaymentPayload({
          x402Version: 2,
          resource: {
            url: "http://127.0.0.1:4021/weather",
            description: "weather",
            mimeType: "application/json",
          },
          accepts: [requirements],
        });
        return { payload, requirements };
      },
    },
    {
      name: "valid since a few seconds (block time aligned with the host's)",
      expected: { isValid: true },
      around: async () => {
        // eth_call runs on the latest block's time, which lags the host's while no block is mined.
        await devnet.client.mine({ blocks: 1 });
        return async () => {};
      },
      build: () => pay(req(), { authorization: { witness: { validAfter: String(nowSeconds() - 2) } } }),
    },
    {
      name: "the upto proxy as spender",
      expected: { isValid: false, invalidReason: "invalid_permit2_spender" },
      build: () => pay(req(), { authorization: { spender: X402_UPTO_PERMIT2_PROXY_ADDRESS } }),
    },
    {
      name: "paying someone else",
      expected: { isValid: false, invalidReason: "invalid_permit2_recipient_mismatch" },
      build: () => pay(req(), { authorization: { witness: { to: account(3).address } } }),
    },
    {
      name: "an expired deadline",
      expected: { isValid: false, invalidReason: "permit2_deadline_expired" },
      build: () => pay(req(), { authorization: { deadline: String(nowSeconds() - 10) } }),
    },
    {
      name: "a deadline inside the 6 s buffer",
      expected: { isValid: false, invalidReason: "permit2_deadline_expired" },
      build: () => pay(req(), { authorization: { deadline: String(nowSeconds() + 3) } }),
    },
    {
      name: "not yet valid",
      expected: { isValid: false, invalidReason: "permit2_not_yet_valid" },
      build: () => pay(req(), { authorization: { witness: { validAfter: String(nowSeconds() + 600) } } }),
    },
    {
      name: "an amount below the price",
      expected: { isValid: false, invalidReason: "permit2_amount_mismatch" },
      build: () => pay(req(), { authorization: { permitted: { token: USDC_ADDRESS, amount: "9999" } } }),
    },
    {
      name: "an amount above the price",
      expected: { isValid: false, invalidReason: "permit2_amount_mismatch" },
      build: () => pay(req(), { authorization: { permitted: { token: USDC_ADDRESS, amount: "10001" } } }),
    },
    {
      name: "another token",
      expected: { isValid: false, invalidReason: "permit2_token_mismatch" },
      build: () =>
        pay(req(), { authorization: { permitted: { token: MULTICALL3_ADDRESS, amount: "10000" } } }),
    },
    {
      name: "an asset that is not a contract",
      expected: { isValid: false, invalidReason: "asset_not_deployed_contract" },
      build: () => pay(req({ asset: privateKeyToAccount(generatePrivateKey()).address })),
    },
    {
      name: "signed by another key",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: async () => {
        const other = await pay(req(), undefined, 2);
        return withAuthorization(other, (a) => {
          a.from = account(0).address;
        });
      },
    },
    {
      name: "a tampered signature byte",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: async () => {
        const good = await pay();
        const signature = (good.payload.payload as { signature: Hex }).signature;
        const bad =
          `${signature.slice(0, 10)}${signature[10] === "0" ? "1" : "0"}${signature.slice(11)}` as Hex;
        return {
          ...good,
          payload: { ...good.payload, payload: { ...good.payload.payload, signature: bad } },
        };
      },
    },
    {
      name: "a 64-byte signature",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: () => pay(req(), { signature: `0x${"11".repeat(64)}` }),
    },
    {
      name: "signed for another chain id",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: () => pay(req(), { chainId: 84532 }),
    },
    {
      name: "signed with upto's witness type",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: () =>
        pay(req(), { signAs: "upto", authorization: { witness: { facilitator: account(7).address } } }),
    },
    {
      name: "a contract payer that does not implement ERC-1271",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: async () =>
        withAuthorization(await pay(), (a) => {
          a.from = MULTICALL3_ADDRESS;
        }),
    },
    {
      name: "a payer without a Permit2 allowance",
      expected: { isValid: false, invalidReason: "permit2_allowance_required" },
      build: () => pay(req(), undefined, 3),
    },
    {
      name: "a payer without enough USDC",
      expected: { isValid: false, invalidReason: "permit2_insufficient_balance" },
      build: () => signPermit2(generatePrivateKey(), req()),
    },
    {
      name: "a Permit2 nonce already spent",
      expected: { isValid: false, invalidReason: "permit2_simulation_failed" },
      build: async () => {
        const used = await pay();
        expect(await official.settle(used.payload, used.requirements)).toMatchObject({ success: true });
        return used;
      },
    },
    {
      name: "a v of 0 instead of 27",
      expected: { isValid: false, invalidReason: "permit2_simulation_failed" },
      build: async () => {
        const good = await pay();
        const signature = (good.payload.payload as { signature: Hex }).signature;
        const v = Number.parseInt(signature.slice(130), 16) - 27;
        const bad = `${signature.slice(0, 130)}0${v}` as Hex;
        return {
          ...good,
          payload: { ...good.payload, payload: { ...good.payload.payload, signature: bad } },
        };
      },
    },
    {
      name: "a blacklisted payer",
      expected: { isValid: false, invalidReason: "permit2_simulation_failed" },
      around: async () => {
        await asAdmin("blacklist", [account(0).address]);
        return () => asAdmin("unBlacklist", [account(0).address]);
      },
      build: () => pay(),
    },
    {
      name: "accepted as upto",
      expected: { isValid: false, invalidReason: "unsupported_payload_type" },
      build: async () => {
        const good = await pay();
        return { ...good, payload: { ...good.payload, accepted: { ...good.requirements, scheme: "upto" } } };
      },
    },
    {
      name: "accepted on another network",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_network_mismatch" },
      build: async () => {
        const good = await pay();
        return {
          ...good,
          payload: { ...good.payload, accepted: { ...good.requirements, network: "eip155:84532" } },
        };
      },
    },
    {
      name: "EIP-2612 sponsoring for a payer without an allowance",
      expected: { isValid: true },
      build: async () => withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3)),
    },
    {
      name: "EIP-2612 sponsoring with the permit signed by another key",
      // The proxy swallows a failed permit; the transfer then lacks the allowance.
      expected: { isValid: false, invalidReason: "permit2_allowance_required" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), {
          signerKey: account(2).privateKey,
        }),
    },
    {
      name: "EIP-2612 sponsoring from another owner",
      expected: { isValid: false, invalidReason: "eip2612_from_mismatch" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), {
          from: account(2).address,
        }),
    },
    {
      name: "EIP-2612 sponsoring of another asset",
      expected: { isValid: false, invalidReason: "eip2612_asset_mismatch" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), {
          asset: MULTICALL3_ADDRESS,
        }),
    },
    {
      name: "EIP-2612 sponsoring to a spender other than Permit2",
      expected: { isValid: false, invalidReason: "eip2612_spender_not_permit2" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), {
          spender: X402_EXACT_PERMIT2_PROXY_ADDRESS,
        }),
    },
    {
      name: "EIP-2612 sponsoring past its deadline",
      expected: { isValid: false, invalidReason: "eip2612_deadline_expired" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), {
          deadline: String(nowSeconds() - 1),
        }),
    },
    {
      name: "EIP-2612 sponsoring with a malformed amount",
      expected: { isValid: false, invalidReason: "invalid_eip2612_extension_format" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), { amount: "ten" }),
    },
    {
      name: "a nonce that is not a number",
      expected: "rejected",
      build: async () =>
        withAuthorization(await pay(), (a) => {
          a.nonce = "ten";
        }),
    },
    {
      name: "a payer that is not an address",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      ours: {
        verdict: "rejected",
        why: "a malformed address is malformed input: 400, where the SDK's getCode fails and it calls the signature bad",
      },
      build: async () =>
        withAuthorization(await pay(), (a) => {
          a.from = "0x1234";
        }),
    },
  ];

  it("covers at least 20 cases where both agree", () => {
    expect(cases.filter((c) => !c.ours).length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)("$name", async (testCase) => {
    const undo = await testCase.around?.();
    try {
      const signed = await testCase.build();
      const [mine, theirs] = await Promise.all([
        oursVerify(ours.url, signed),
        officialVerify(official, signed),
      ]);
      expect(theirs).toEqual(testCase.expected);
      expect(mine).toEqual(testCase.ours?.verdict ?? theirs);
    } finally {
      await undo?.();
    }
  });
});

type SettleCase = {
  name: string;
  expected: Settlement;
  build: () => Promise<Signed>;
};

describe("exact by Permit2: settle parity with the official x402Facilitator", () => {
  const cases: SettleCase[] = [
    {
      name: "a Permit2 nonce the official facilitator spent already",
      expected: { success: false, errorReason: "invalid_exact_evm_transaction_failed" },
      build: async () => {
        const used = await pay(req(), undefined, 2);
        expect(await official.settle(used.payload, used.requirements)).toMatchObject({ success: true });
        return used;
      },
    },
    {
      // Settle does not simulate (the SDK's default): the send's gas estimate finds the missing allowance.
      name: "a payer without a Permit2 allowance",
      expected: { success: false, errorReason: "invalid_exact_evm_transaction_failed" },
      build: () => pay(req(), undefined, 3),
    },
    {
      name: "an expired deadline",
      expected: { success: false, errorReason: "permit2_deadline_expired" },
      build: () => pay(req(), { authorization: { deadline: String(nowSeconds() - 10) } }),
    },
    {
      name: "paying someone else",
      expected: { success: false, errorReason: "invalid_permit2_recipient_mismatch" },
      build: () => pay(req(), { authorization: { witness: { to: account(3).address } } }),
    },
    {
      name: "signed by another key",
      expected: { success: false, errorReason: "invalid_permit2_signature" },
      build: async () =>
        withAuthorization(await pay(req(), undefined, 2), (a) => {
          a.from = account(0).address;
        }),
    },
    {
      name: "an amount below the price",
      expected: { success: false, errorReason: "permit2_amount_mismatch" },
      build: () => pay(req(), { authorization: { permitted: { token: USDC_ADDRESS, amount: "9999" } } }),
    },
  ];

  it.each(cases)("$name", async (testCase) => {
    const signed = await testCase.build();
    const before = await balanceOf(devnet, account(1).address);
    const [mine, theirs] = await Promise.all([
      oursSettleResponse(ours.url, signed),
      officialSettleResponse(official, signed),
    ]);
    expect(settlement(theirs)).toEqual(testCase.expected);
    expect(settlement(mine)).toEqual(settlement(theirs));
    expect(await balanceOf(devnet, account(1).address)).toBe(before);
  });

  it("settles a good payment as the official does: the amount moves once, the answer has no amount", async () => {
    const [mine, theirs] = await Promise.all([pay(), pay(req(), undefined, 2)]);
    const before = await balanceOf(devnet, account(1).address);
    const oursAnswer = (await oursSettleResponse(ours.url, mine)) as SettleResponse;
    const officialAnswer = await official.settle(theirs.payload, theirs.requirements);
    expect(oursAnswer).toEqual({
      success: true,
      transaction: expect.stringMatching(/^0x[0-9a-f]{64}$/),
      network: "eip155:8453",
      payer: account(0).address,
    });
    expect(Object.keys(oursAnswer).sort()).toEqual(Object.keys(officialAnswer).sort());
    expect(await balanceOf(devnet, account(1).address)).toBe(before + 20_000n);
    const receipt = await devnet.client.getTransactionReceipt({ hash: oursAnswer.transaction as Hex });
    expect(receipt.from.toLowerCase()).toBe(account(6).address.toLowerCase());
    expect(receipt.to?.toLowerCase()).toBe(X402_EXACT_PERMIT2_PROXY_ADDRESS.toLowerCase());
  });

  it("settles an EIP-2612-sponsored payment by settleWithPermit, as the official does", async () => {
    const [mine, theirs] = await Promise.all([
      pay(req(), undefined, 4).then((s) => withEip2612(devnet, account(4).privateKey, s)),
      pay(req(), undefined, 8).then((s) => withEip2612(devnet, account(8).privateKey, s)),
    ]);
    const before = await Promise.all([
      balanceOf(devnet, account(4).address),
      balanceOf(devnet, account(8).address),
    ]);
    const [oursAnswer, officialAnswer] = await Promise.all([
      oursSettleResponse(ours.url, mine),
      officialSettleResponse(official, theirs),
    ]);
    expect(settlement(oursAnswer)).toEqual({ success: true });
    expect(settlement(officialAnswer)).toEqual({ success: true });
    expect(
      await Promise.all([balanceOf(devnet, account(4).address), balanceOf(devnet, account(8).address)]),
    ).toEqual(before.map((b) => b - 10_000n));
    const receipt = await devnet.client.getTransactionReceipt({
      hash: (oursAnswer as SettleResponse).transaction as Hex,
    });
    const tx = await devnet.client.getTransaction({ hash: receipt.transactionHash });
    expect(decodeFunctionData({ abi: x402ExactPermit2ProxyAbi, data: tx.input }).functionName).toBe(
      "settleWithPermit",
    );
  });

  it("answers a repeat of a settled payment with its first settlement (the official reverts on the spent nonce)", async () => {
    const signed = await pay();
    const first = (await oursSettleResponse(ours.url, signed)) as SettleResponse;
    expect(first.success).toBe(true);
    const again = await oursSettleResponse(ours.url, signed);
    expect(again).toMatchObject({
      success: true,
      transaction: first.transaction,
      extra: { duplicate: true },
    });
    expect(settlement(await officialSettleResponse(official, signed))).toEqual({
      success: false,
      errorReason: "invalid_exact_evm_transaction_failed",
    });
  });

  it("settles one payment once under 8 concurrent settles: one transfer on chain, every answer its transaction", async () => {
    const signed = await pay();
    const before = await balanceOf(devnet, account(1).address);
    const fromBlock = await devnet.client.getBlockNumber();
    const answers = (await Promise.all(
      Array.from({ length: 8 }, () => oursSettleResponse(ours.url, signed)),
    )) as SettleResponse[];
    expect(answers.every((a) => a.success)).toBe(true);
    expect(new Set(answers.map((a) => a.transaction)).size).toBe(1);
    expect(answers.filter((a) => !a.extra?.duplicate)).toHaveLength(1);
    expect(await balanceOf(devnet, account(1).address)).toBe(before + 10_000n);
    const logs = await devnet.client.getLogs({ address: USDC_ADDRESS, fromBlock: fromBlock + 1n });
    const transfers = parseEventLogs({ abi: mockUsdcAbi, eventName: "Transfer", logs }).filter(
      (log) => log.args.to.toLowerCase() === account(1).address.toLowerCase(),
    );
    expect(transfers).toHaveLength(1);
  });
});

describe("exact served by two modules", () => {
  it("routes an EIP-3009 payment to the EIP-3009 module and a Permit2 one to the Permit2 module", async () => {
    const eip3009 = signPayment(account(0).privateKey, usdcRequirements(account(1).address, 1_000n));
    const viaPermit2 = await pay();
    const [a, b] = await Promise.all([
      postSettle(ours.url, eip3009, usdcRequirements(account(1).address, 1_000n)),
      oursSettleResponse(ours.url, viaPermit2) as Promise<SettleResponse>,
    ]);
    expect(a).toMatchObject({ success: true, amount: "1000" });
    expect(b).toMatchObject({ success: true });
    const [txA, txB] = await Promise.all([
      devnet.client.getTransaction({ hash: a.transaction as Hex }),
      devnet.client.getTransaction({ hash: b.transaction as Hex }),
    ]);
    expect([txA.from.toLowerCase(), txA.to?.toLowerCase()]).toEqual([
      account(5).address.toLowerCase(),
      USDC_ADDRESS.toLowerCase(),
    ]);
    expect([txB.from.toLowerCase(), txB.to?.toLowerCase()]).toEqual([
      account(6).address.toLowerCase(),
      X402_EXACT_PERMIT2_PROXY_ADDRESS.toLowerCase(),
    ]);
  });

  it("counts the Permit2 module's RPC calls and codes in /metrics, a send error by its code alone", async () => {
    const text = await (await fetch(`${ours.url}/metrics`)).text();
    // Only the Permit2 module estimates gas.
    expect(text).toMatch(/x402_facilitator_rpc_calls_total\{method="eth_estimateGas"\} [1-9]/);
    expect(text).toMatch(/code="invalid_exact_evm_transaction_failed"/);
    expect(text).not.toMatch(/code="invalid_exact_evm_transaction_failed:/);
  });

  it("lists exact once, upto with its facilitator, and each signer once", async () => {
    const supported = (await (await fetch(`${ours.url}/supported`)).json()) as {
      kinds: { x402Version: number; scheme: string; network: string; extra?: Record<string, unknown> }[];
      signers: Record<string, string[]>;
    };
    const v2 = supported.kinds.filter((k) => k.x402Version === 2);
    expect(v2).toEqual([
      { x402Version: 2, scheme: "exact", network: "eip155:8453" },
      {
        x402Version: 2,
        scheme: "upto",
        network: "eip155:8453",
        extra: { facilitatorAddress: account(6).address },
      },
    ]);
    expect(supported.signers["eip155:*"]).toEqual([account(5).address, account(6).address]);
  });
});
