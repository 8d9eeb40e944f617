import { x402Client } from "@x402/core/client";
import { UptoEvmScheme as UptoClient } from "@x402/evm/upto/client";
import { type Address, decodeFunctionData, type Hex, parseEventLogs } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { x402UptoPermit2ProxyAbi } from "../../src/chain/artifacts.generated.ts";
import {
  approvePermit2,
  type Devnet,
  MULTICALL3_ADDRESS,
  mockUsdcAbi,
  startDevnet,
  USDC_ADDRESS,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
} from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import type { PaymentRequirements, SettleResponse } from "../../src/protocol/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialFacilitator } from "../support/official-facilitator.ts";
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

// Accounts: 0 and 2 payers with a Permit2 allowance, 3 one without, 4 a payer sponsoring by EIP-2612,
// 1 the payee, 5 our EIP-3009 relayer, 6 our upto facilitator, 7 the official facilitator's. Ours also
// holds 7's key, so that a witness naming 7 is ours as much as the official's and both verify the same
// payment; ours never sends from it (only payments naming 6 reach our send), so the two never race a nonce.
const account = (index: number) => devnetAccount(devnet, index);
const OFFICIAL = () => account(7).address;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 9 });
  ours = await startFacilitator({
    exact: { rpcUrl: devnet.rpcUrl, chainId: devnet.chainId, relayerKeys: [account(5).privateKey] },
    permit2: {
      rpcUrl: devnet.rpcUrl,
      chainId: devnet.chainId,
      relayerKeys: [account(6).privateKey, account(7).privateKey],
      uptoFacilitator: account(6).address,
    },
  });
  official = officialFacilitator(devnet.rpcUrl, devnet.chainId, account(7).privateKey, { upto: true });
  await approvePermit2(devnet.client, [account(0), account(2)], USDC_ADDRESS, devnet.mineOnDemand);
});
afterAll(async () => {
  await ours?.stop();
  await devnet?.stop();
});

/** upto requirements for a maximum of 2,000, naming `facilitator` (the official's unless told). */
const req = (facilitator: Address = OFFICIAL(), overrides: Partial<PaymentRequirements> = {}) =>
  permit2Requirements("upto", account(1).address, 2_000n, facilitator, overrides);
const pay = (requirements = req(), options?: Parameters<typeof signPermit2>[2], payer = 0) =>
  signPermit2(account(payer).privateKey, requirements, options);
/** `signed` settled for `amount` (the requirements carry the actual amount at settle). */
const charging = (signed: Signed, amount: bigint): Signed => ({
  payload: signed.payload,
  requirements: { ...signed.requirements, amount: amount.toString() },
});

type Case = {
  name: string;
  expected: Verdict;
  ours?: { verdict: Verdict; why: string };
  build: () => Promise<Signed>;
};

describe("upto: verify parity with the official x402Facilitator + UptoEvmScheme on the same devnet", () => {
  const cases: Case[] = [
    { name: "a good payment", expected: { isValid: true }, build: () => pay() },
    {
      name: "a good payment from the official client",
      expected: { isValid: true },
      build: async () => {
        const requirements = req();
        const client = new x402Client().register(
          `eip155:${devnet.chainId}`,
          new UptoClient(privateKeyToAccount(account(0).privateKey)),
        );
        const payload = await client.createPaymentPayload({
          x402Version: 2,
          resource: {
            url: "http://127.0.0.1:4021/inference",
            description: "tokens",
            mimeType: "application/json",
          },
          accepts: [requirements],
        });
        return { payload, requirements };
      },
    },
    {
      name: "a witness naming a facilitator that is neither's",
      expected: { isValid: false, invalidReason: "upto_facilitator_mismatch" },
      build: () => pay(req(privateKeyToAccount(generatePrivateKey()).address)),
    },
    {
      name: "the exact proxy as spender",
      expected: { isValid: false, invalidReason: "invalid_permit2_spender" },
      build: () => pay(req(), { authorization: { spender: X402_EXACT_PERMIT2_PROXY_ADDRESS } }),
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
      name: "not yet valid",
      expected: { isValid: false, invalidReason: "permit2_not_yet_valid" },
      build: () => pay(req(), { authorization: { witness: { validAfter: String(nowSeconds() + 600) } } }),
    },
    {
      name: "a maximum other than the requirements' amount",
      expected: { isValid: false, invalidReason: "permit2_amount_mismatch" },
      build: () => pay(req(), { authorization: { permitted: { token: USDC_ADDRESS, amount: "1999" } } }),
    },
    {
      name: "another token",
      expected: { isValid: false, invalidReason: "permit2_token_mismatch" },
      build: () =>
        pay(req(), { authorization: { permitted: { token: MULTICALL3_ADDRESS, amount: "2000" } } }),
    },
    {
      name: "an asset that is not a contract",
      expected: { isValid: false, invalidReason: "asset_not_deployed_contract" },
      build: () => pay(req(OFFICIAL(), { asset: privateKeyToAccount(generatePrivateKey()).address })),
    },
    {
      name: "signed by another key",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: async () =>
        withAuthorization(await pay(req(), undefined, 2), (a) => {
          a.from = account(0).address;
        }),
    },
    {
      name: "signed with exact's witness type",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: () => pay(req(), { signAs: "exact" }),
    },
    {
      name: "a witness facilitator changed after signing",
      expected: { isValid: false, invalidReason: "invalid_permit2_signature" },
      build: async () =>
        withAuthorization(await pay(req(account(6).address)), (a) => {
          (a.witness as Record<string, string>).facilitator = OFFICIAL();
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
        expect(await official.settle(used.payload, charging(used, 500n).requirements)).toMatchObject({
          success: true,
        });
        return used;
      },
    },
    {
      name: "accepted as exact",
      expected: { isValid: false, invalidReason: "invalid_upto_evm_scheme" },
      build: async () => {
        const good = await pay();
        return { ...good, payload: { ...good.payload, accepted: { ...good.requirements, scheme: "exact" } } };
      },
    },
    {
      name: "accepted on another network",
      expected: { isValid: false, invalidReason: "invalid_upto_evm_network_mismatch" },
      build: async () => {
        const good = await pay();
        return {
          ...good,
          payload: { ...good.payload, accepted: { ...good.requirements, network: "eip155:84532" } },
        };
      },
    },
    {
      name: "a witness without a facilitator",
      expected: { isValid: false, invalidReason: "unsupported_payload_type" },
      build: async () =>
        withAuthorization(await pay(), (a) => {
          delete (a.witness as Record<string, string>).facilitator;
        }),
    },
    {
      name: "a nonce as a JSON number",
      expected: { isValid: false, invalidReason: "unsupported_payload_type" },
      build: async () =>
        withAuthorization(await pay(), (a) => {
          a.nonce = 12;
        }),
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
      name: "EIP-2612 sponsoring for a payer without an allowance",
      expected: { isValid: true },
      build: async () => withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3)),
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
      name: "EIP-2612 sponsoring past its deadline",
      expected: { isValid: false, invalidReason: "eip2612_deadline_expired" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), {
          deadline: String(nowSeconds() - 1),
        }),
    },
    {
      name: "EIP-2612 sponsoring of less than the maximum",
      // The proxy refuses a permit for other than the signed maximum (Permit2612AmountMismatch).
      expected: { isValid: false, invalidReason: "permit2_allowance_required" },
      build: async () =>
        withEip2612(devnet, account(3).privateKey, await pay(req(), undefined, 3), { amount: "1000" }),
    },
  ];

  it("covers at least 20 cases where both agree", () => {
    expect(cases.filter((c) => !c.ours).length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)("$name", async (testCase) => {
    const signed = await testCase.build();
    const [mine, theirs] = await Promise.all([
      oursVerify(ours.url, signed),
      officialVerify(official, signed),
    ]);
    expect(theirs).toEqual(testCase.expected);
    expect(mine).toEqual(testCase.ours?.verdict ?? theirs);
  });
});

type SettleCase = { name: string; expected: Settlement; build: () => Promise<Signed> };

describe("upto: settle parity with the official facilitator", () => {
  const cases: SettleCase[] = [
    {
      name: "more than the signed maximum",
      expected: { success: false, errorReason: "invalid_upto_evm_payload_settlement_exceeds_amount" },
      build: async () => charging(await pay(), 2_001n),
    },
    {
      name: "a witness naming a facilitator that is neither's",
      expected: { success: false, errorReason: "upto_facilitator_mismatch" },
      build: async () => charging(await pay(req(privateKeyToAccount(generatePrivateKey()).address)), 1_000n),
    },
    {
      name: "a Permit2 nonce the official facilitator spent already",
      expected: { success: false, errorReason: "permit2_simulation_failed" },
      build: async () => {
        const used = await pay(req(), undefined, 2);
        expect(await official.settle(used.payload, charging(used, 700n).requirements)).toMatchObject({
          success: true,
          amount: "700",
        });
        return charging(used, 700n);
      },
    },
    {
      // Settle simulates the signed maximum (the SDK's default for upto): a missing allowance shows there.
      name: "a payer without a Permit2 allowance",
      expected: { success: false, errorReason: "permit2_allowance_required" },
      build: async () => charging(await pay(req(), undefined, 3), 1_000n),
    },
    {
      name: "an expired deadline",
      expected: { success: false, errorReason: "permit2_deadline_expired" },
      build: async () =>
        charging(await pay(req(), { authorization: { deadline: String(nowSeconds() - 10) } }), 1n),
    },
    {
      name: "signed by another key",
      expected: { success: false, errorReason: "invalid_permit2_signature" },
      build: async () =>
        charging(
          withAuthorization(await pay(req(), undefined, 2), (a) => {
            a.from = account(0).address;
          }),
          1_000n,
        ),
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

  it("settles zero without a transaction, as the official does", async () => {
    const signed = charging(await pay(), 0n);
    const before = await devnet.client.getBlockNumber();
    const [mine, theirs] = await Promise.all([
      oursSettleResponse(ours.url, signed),
      officialSettleResponse(official, signed),
    ]);
    const expected = {
      success: true,
      transaction: "",
      network: "eip155:8453",
      payer: account(0).address,
      amount: "0",
    };
    expect(theirs).toEqual(expected);
    expect(mine).toEqual(expected);
    expect(await devnet.client.getBlockNumber()).toBe(before);
    // Nothing was spent: the same payment still settles a real amount.
    expect(await officialSettleResponse(official, charging(signed, 300n))).toMatchObject({
      success: true,
      amount: "300",
    });
  });

  it("settles the metered amount from the named facilitator, as the official does", async () => {
    const [mine, theirs] = await Promise.all([pay(req(account(6).address)), pay(req(), undefined, 2)]);
    const before = await Promise.all([
      balanceOf(devnet, account(0).address),
      balanceOf(devnet, account(2).address),
    ]);
    const oursAnswer = (await oursSettleResponse(ours.url, charging(mine, 1_200n))) as SettleResponse;
    const officialAnswer = (await officialSettleResponse(
      official,
      charging(theirs, 1_200n),
    )) as SettleResponse;
    expect(oursAnswer).toEqual({
      success: true,
      transaction: expect.stringMatching(/^0x[0-9a-f]{64}$/),
      network: "eip155:8453",
      payer: account(0).address,
      amount: "1200",
    });
    expect(officialAnswer).toMatchObject({ success: true, amount: "1200" });
    expect(
      await Promise.all([balanceOf(devnet, account(0).address), balanceOf(devnet, account(2).address)]),
    ).toEqual(before.map((b) => b - 1_200n));
    const tx = await devnet.client.getTransaction({ hash: oursAnswer.transaction as Hex });
    expect(tx.from.toLowerCase()).toBe(account(6).address.toLowerCase());
    expect(tx.to?.toLowerCase()).toBe(X402_UPTO_PERMIT2_PROXY_ADDRESS.toLowerCase());
    expect(decodeFunctionData({ abi: x402UptoPermit2ProxyAbi, data: tx.input }).args?.[1]).toBe(1_200n);
  });

  it("settles an EIP-2612-sponsored payment by settleWithPermit", async () => {
    const signed = await withEip2612(
      devnet,
      account(4).privateKey,
      await pay(req(account(6).address), undefined, 4),
    );
    const before = await balanceOf(devnet, account(4).address);
    const answer = (await oursSettleResponse(ours.url, charging(signed, 800n))) as SettleResponse;
    expect(answer).toMatchObject({ success: true, amount: "800" });
    expect(await balanceOf(devnet, account(4).address)).toBe(before - 800n);
    const tx = await devnet.client.getTransaction({ hash: answer.transaction as Hex });
    expect(decodeFunctionData({ abi: x402UptoPermit2ProxyAbi, data: tx.input }).functionName).toBe(
      "settleWithPermit",
    );
  });

  it("answers a repeat asking for another amount with the first settlement and its amount", async () => {
    const signed = await pay(req(account(6).address));
    const first = (await oursSettleResponse(ours.url, charging(signed, 400n))) as SettleResponse;
    expect(first).toMatchObject({ success: true, amount: "400" });
    const before = await balanceOf(devnet, account(1).address);
    expect(await oursSettleResponse(ours.url, charging(signed, 900n))).toMatchObject({
      success: true,
      transaction: first.transaction,
      amount: "400",
      extra: { duplicate: true },
    });
    expect(await balanceOf(devnet, account(1).address)).toBe(before);
  });

  it("settles one payment once under 8 concurrent settles: one transfer, every answer its transaction", async () => {
    const signed = charging(await pay(req(account(6).address)), 1_500n);
    const before = await balanceOf(devnet, account(1).address);
    const fromBlock = await devnet.client.getBlockNumber();
    const answers = (await Promise.all(
      Array.from({ length: 8 }, () => oursSettleResponse(ours.url, signed)),
    )) as SettleResponse[];
    expect(answers.every((a) => a.success && a.amount === "1500")).toBe(true);
    expect(new Set(answers.map((a) => a.transaction)).size).toBe(1);
    expect(answers.filter((a) => !a.extra?.duplicate)).toHaveLength(1);
    expect(await balanceOf(devnet, account(1).address)).toBe(before + 1_500n);
    const logs = await devnet.client.getLogs({ address: USDC_ADDRESS, fromBlock: fromBlock + 1n });
    const transfers = parseEventLogs({ abi: mockUsdcAbi, eventName: "Transfer", logs }).filter(
      (log) => log.args.to.toLowerCase() === account(1).address.toLowerCase(),
    );
    expect(transfers).toHaveLength(1);
  });
});
