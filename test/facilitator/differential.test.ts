import { encodeFunctionData, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Devnet,
  MOCK_USDC_ADMIN,
  MULTICALL3_ADDRESS,
  mockUsdcAbi,
  startDevnet,
  USDC_ADDRESS,
} from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import type { PaymentPayload, PaymentRequirements, VerifyResponse } from "../../src/protocol/index.ts";
import { officialFacilitator } from "../support/official-facilitator.ts";
import { signPayment, usdcRequirements } from "../support/payments.ts";

let devnet: Devnet;
let ours: Facilitator;
let official: ReturnType<typeof officialFacilitator>;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 6 });
  const relayer = devnet.accounts[5]?.privateKey as Hex;
  ours = await startFacilitator({
    exact: { rpcUrl: devnet.rpcUrl, chainId: devnet.chainId, relayerKeys: [relayer] },
  });
  official = officialFacilitator(devnet.rpcUrl, devnet.chainId, relayer);
});
afterAll(async () => {
  await ours?.stop();
  await devnet?.stop();
});

type Verdict = { isValid: boolean; invalidReason?: string } | "rejected";

async function oursVerdict(
  paymentPayload: PaymentPayload,
  paymentRequirements: PaymentRequirements,
): Promise<Verdict> {
  const response = await fetch(`${ours.url}/verify`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ x402Version: 2, paymentPayload, paymentRequirements }),
  });
  if (response.status === 400) return "rejected";
  const body = (await response.json()) as VerifyResponse;
  return { isValid: body.isValid, invalidReason: body.invalidReason };
}

/** The official facilitator throws on malformed input (its HTTP wrapper answers 500); ours answers 400. Both: "rejected". */
async function officialVerdict(payload: PaymentPayload, requirements: PaymentRequirements): Promise<Verdict> {
  try {
    const result = await official.verify(payload, requirements);
    return { isValid: result.isValid, invalidReason: result.invalidReason };
  } catch {
    return "rejected";
  }
}

async function asAdmin(
  functionName: "blacklist" | "unBlacklist" | "pause" | "unpause",
  args: readonly Hex[] = [],
) {
  const data = encodeFunctionData({ abi: mockUsdcAbi, functionName, args } as Parameters<
    typeof encodeFunctionData
  >[0]);
  const hash = await devnet.client.sendUnsignedTransaction({ from: MOCK_USDC_ADMIN, to: USDC_ADDRESS, data });
  await devnet.client.waitForTransactionReceipt({ hash });
}

const now = () => Math.floor(Date.now() / 1000);

/** A signed payment with one authorization field replaced afterwards (what no signer would produce). */
function withAuthorizationField(
  signed: { payload: PaymentPayload; requirements: PaymentRequirements },
  field: string,
  value: string,
) {
  const inner = signed.payload.payload as { signature: Hex; authorization: Record<string, string> };
  const payload = {
    ...signed.payload,
    payload: { ...inner, authorization: { ...inner.authorization, [field]: value } },
  };
  return { payload, requirements: signed.requirements };
}

type Case = {
  name: string;
  expected: Verdict;
  /** Where ours deliberately answers otherwise (a 400 for a malformed field), and why. */
  ours?: { verdict: Verdict; why: string };
  build: () =>
    | Promise<{ payload: PaymentPayload; requirements: PaymentRequirements }>
    | { payload: PaymentPayload; requirements: PaymentRequirements };
  /** Chain state the case needs, undone by the returned function. */
  around?: () => Promise<() => Promise<void>>;
};

describe("verify parity with the official x402Facilitator + ExactEvmScheme on the same devnet", () => {
  const payer = () => devnet.accounts[0] as { address: Hex; privateKey: Hex };
  const payee = () => devnet.accounts[1] as { address: Hex; privateKey: Hex };
  const req = (overrides: Partial<PaymentRequirements> = {}) =>
    usdcRequirements(payee().address, 10_000n, overrides);
  const pay = (requirements: PaymentRequirements, options?: Parameters<typeof signPayment>[2]) => ({
    payload: signPayment(payer().privateKey, requirements, options),
    requirements,
  });

  const cases: Case[] = [
    { name: "a good payment", expected: { isValid: true }, build: () => pay(req()) },
    {
      name: "signed by another key",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
      build: () => {
        const requirements = req();
        const payload = signPayment(devnet.accounts[2]?.privateKey as Hex, requirements, {
          authorization: { from: payer().address },
        });
        return { payload, requirements };
      },
    },
    {
      name: "a tampered signature byte",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
      build: () => {
        const good = pay(req());
        const signature = (good.payload.payload as { signature: Hex }).signature;
        const bad =
          `${signature.slice(0, 10)}${signature[10] === "0" ? "1" : "0"}${signature.slice(11)}` as Hex;
        return pay(req(), { signature: bad });
      },
    },
    {
      name: "a 64-byte signature",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
      build: () => pay(req(), { signature: `0x${"11".repeat(64)}` }),
    },
    {
      name: "signed for another chain id",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
      build: () => {
        const requirements = req();
        const other = signPayment(payer().privateKey, { ...requirements, network: "eip155:84532" });
        return { payload: { ...other, accepted: requirements }, requirements };
      },
    },
    {
      name: "an amount below the price",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_payload_authorization_value_mismatch" },
      build: () => pay(req(), { authorization: { value: "9999" } }),
    },
    {
      name: "an amount above the price",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_payload_authorization_value_mismatch" },
      build: () => pay(req(), { authorization: { value: "10001" } }),
    },
    {
      name: "paying someone else",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_recipient_mismatch" },
      build: () => pay(req(), { authorization: { to: devnet.accounts[3]?.address as Hex } }),
    },
    {
      name: "accepted on another network",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_network_mismatch" },
      build: () => {
        const good = pay(req());
        return {
          payload: { ...good.payload, accepted: { ...good.requirements, network: "eip155:84532" } },
          requirements: good.requirements,
        };
      },
    },
    {
      name: "an unknown scheme in accepted",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_scheme" },
      build: () => {
        const good = pay(req());
        return {
          payload: { ...good.payload, accepted: { ...good.requirements, scheme: "upto" } },
          requirements: good.requirements,
        };
      },
    },
    {
      name: "a wrong token name",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_token_name_mismatch" },
      build: () => pay(req({ extra: { name: "USDC", version: "2" } })),
    },
    {
      // The token would accept this transfer (it is signed over the token's real domain), but `extra`
      // names another domain: only a signature check against `extra` catches it, as the reference's does.
      name: "signed over the token's domain, while extra names another",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
      build: () => pay(req({ extra: { name: "USDC", version: "2" } }), { domain: { name: "USD Coin" } }),
    },
    {
      name: "a wrong token version",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_token_version_mismatch" },
      build: () => pay(req({ extra: { name: "USD Coin", version: "1" } })),
    },
    {
      name: "no EIP-712 domain in extra",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_missing_eip712_domain" },
      build: () => {
        const good = pay(req());
        return { payload: good.payload, requirements: { ...good.requirements, extra: {} } };
      },
    },
    {
      name: "expired",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_payload_authorization_valid_before" },
      build: () => pay(req(), { authorization: { validBefore: String(now() - 10) } }),
    },
    {
      name: "expiring inside the 6 s buffer",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_payload_authorization_valid_before" },
      build: () => pay(req(), { authorization: { validBefore: String(now() + 3) } }),
    },
    {
      name: "not yet valid",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_payload_authorization_valid_after" },
      build: () => pay(req(), { authorization: { validAfter: String(now() + 600) } }),
    },
    {
      name: "a nonce already used on chain",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_nonce_already_used" },
      build: async () => {
        const used = pay(req());
        const settled = await official.settle(used.payload, used.requirements);
        expect(settled.success).toBe(true);
        return used;
      },
    },
    {
      name: "a payer without enough USDC",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_insufficient_balance" },
      build: () => {
        const requirements = req();
        return { payload: signPayment(generatePrivateKey(), requirements), requirements };
      },
    },
    {
      name: "an asset that is not a contract",
      expected: { isValid: false, invalidReason: "asset_not_deployed_contract" },
      build: () => pay(req({ asset: privateKeyToAccount(generatePrivateKey()).address })),
    },
    {
      name: "a contract payer that does not implement ERC-1271",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
      build: () => pay(req(), { authorization: { from: MULTICALL3_ADDRESS } }),
    },
    {
      name: "a v of 0 instead of 27",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_transaction_simulation_failed" },
      build: () => {
        const good = pay(req());
        const signature = (good.payload.payload as { signature: Hex }).signature;
        const v = Number.parseInt(signature.slice(130), 16) - 27;
        return pay(req(), {
          signature: `${signature.slice(0, 130)}0${v}` as Hex,
          authorization: good.payload.payload.authorization as never,
        });
      },
    },
    {
      name: "a blacklisted payer",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_transaction_simulation_failed" },
      around: async () => {
        await asAdmin("blacklist", [payer().address]);
        return () => asAdmin("unBlacklist", [payer().address]);
      },
      build: () => pay(req()),
    },
    {
      name: "a paused token",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_transaction_simulation_failed" },
      around: async () => {
        await asAdmin("pause");
        return () => asAdmin("unpause");
      },
      build: () => pay(req()),
    },
    {
      name: "a value that is not a number",
      expected: "rejected",
      build: () => withAuthorizationField(pay(req()), "value", "ten"),
    },
    {
      name: "a nonce that is not 32 bytes",
      expected: { isValid: false, invalidReason: "invalid_exact_evm_signature" },
      ours: {
        verdict: "rejected",
        why: "a bytes32 field of the wrong length is malformed input: 400, not a bad signature",
      },
      build: () => withAuthorizationField(pay(req()), "nonce", "0x1234"),
    },
  ];

  it("covers at least 20 cases where both agree", () => {
    expect(cases.filter((c) => !c.ours).length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)("$name", async (testCase) => {
    const undo = await testCase.around?.();
    try {
      const { payload, requirements } = await testCase.build();
      const [mine, theirs] = await Promise.all([
        oursVerdict(payload, requirements),
        officialVerdict(payload, requirements),
      ]);
      expect(theirs).toEqual(testCase.expected);
      expect(mine).toEqual(testCase.ours?.verdict ?? theirs);
    } finally {
      await undo?.();
    }
  });
});
