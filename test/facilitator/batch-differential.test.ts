import { BATCH_SETTLEMENT_DOMAIN, voucherTypes } from "@x402/evm";
import {
  type Address,
  encodeAbiParameters,
  erc20Abi,
  type Hex,
  keccak256,
  parseEventLogs,
  toHex,
  zeroAddress,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  approvePermit2,
  BASE_NETWORK,
  type Devnet,
  mockUsdcAbi,
  startDevnet,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
  x402BatchSettlementAbi,
} from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import {
  type ChannelConfig,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  type PaymentPayload,
  type PaymentRequirements,
  PERMIT2_ADDRESS,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  type SettleResponse,
  type VerifyResponse,
  X402_BATCH_SETTLEMENT_ADDRESS,
} from "../../src/protocol/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialBatchFacilitator } from "../support/official-facilitator.ts";

// Ours (over HTTP) and the official @x402/evm 2.27 BatchSettlementEvmScheme (in process), on one devnet,
// with the same receiver authorizer: the same verify requests get the same verdicts; settle actions, which
// change the chain, are asked of each on twin channels (same shape, own payee) and get the same answers.

let devnet: Devnet;
let ours: Facilitator;
let official: ReturnType<typeof officialBatchFacilitator>;

// Accounts: 0 and 1 payers with a Permit2 allowance, 2 a payer without one, 3 the verify cases' payee (the twin
// settles pay fresh addresses), 5 our relayer, 6 the official's, 7 the shared receiver authorizer,
// 8 a stranger who signs what is not his, 9 the concurrency test's payer.
const account = (index: number) => devnetAccount(devnet, index);
const authorizer = () => account(7).address;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 10 });
  ours = await startFacilitator({
    schemes: [],
    batchSettlement: {
      rpcUrl: devnet.rpcUrl,
      chainId: devnet.chainId,
      relayerKeys: [account(5).privateKey],
      receiverAuthorizerKey: account(7).privateKey,
    },
  });
  official = officialBatchFacilitator(
    devnet.rpcUrl,
    devnet.chainId,
    account(6).privateKey,
    account(7).privateKey,
  );
  await approvePermit2(
    devnet.client,
    [0, 1, 9].map((payer) => account(payer)),
    USDC_ADDRESS,
    devnet.mineOnDemand,
  );
});
afterAll(async () => {
  await ours?.stop();
  await devnet?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const randomBytes32 = () => generatePrivateKey();

type Method = "eip3009" | "permit2";

/** Requirements of a batch route paying `payTo`, as the official server publishes them. */
function requirements(
  payTo: Address,
  extra: Record<string, unknown> = {},
  overrides: Partial<PaymentRequirements> = {},
): PaymentRequirements {
  return {
    scheme: "batch-settlement",
    network: BASE_NETWORK,
    asset: USDC_ADDRESS,
    amount: "1000",
    payTo,
    maxTimeoutSeconds: 300,
    extra: {
      receiverAuthorizer: authorizer(),
      withdrawDelay: 900,
      name: USDC_NAME,
      version: USDC_VERSION,
      ...extra,
    },
    ...overrides,
  };
}

/** What the channel manager sends with its claims, settles and refunds. */
const managerRequirements = (payTo: Address): PaymentRequirements => ({
  scheme: "batch-settlement",
  network: BASE_NETWORK,
  asset: USDC_ADDRESS,
  amount: "0",
  payTo,
  maxTimeoutSeconds: 0,
  extra: {},
});

/** A channel of `payer` to `payTo` as the official client configures one (its own key signs vouchers), fresh salt. */
function channel(payer: Hex, payTo: Address, overrides: Partial<ChannelConfig> = {}): ChannelConfig {
  const address = privateKeyToAccount(payer).address;
  return {
    payer: address,
    payerAuthorizer: address,
    receiver: payTo,
    receiverAuthorizer: authorizer(),
    token: USDC_ADDRESS,
    withdrawDelay: 900,
    salt: randomBytes32(),
    ...overrides,
  };
}

const channelIdOnChain = (config: ChannelConfig) =>
  devnet.client.readContract({
    address: X402_BATCH_SETTLEMENT_ADDRESS,
    abi: x402BatchSettlementAbi,
    functionName: "getChannelId",
    args: [config],
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

const usdcBalance = (address: Address) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

async function signVoucher(key: Hex, channelId: Hex, max: bigint): Promise<Hex> {
  return privateKeyToAccount(key).signTypedData({
    domain: {
      ...BATCH_SETTLEMENT_DOMAIN,
      chainId: devnet.chainId,
      verifyingContract: X402_BATCH_SETTLEMENT_ADDRESS,
    },
    types: voucherTypes,
    primaryType: "Voucher",
    message: { channelId, maxClaimableAmount: max },
  });
}

type DepositOptions = {
  method?: Method;
  amount?: bigint;
  max?: bigint;
  /** Signs the deposit authorization (default: the payer). */
  authorizationKey?: Hex;
  /** Signs the voucher (default: the payer). */
  voucherKey?: Hex;
  /** The voucher's channel id (default: the config's). */
  channelId?: Hex;
  validAfter?: bigint;
  validBefore?: bigint;
  permit2?: Partial<{ from: Address; spender: Address; amount: bigint; deadline: bigint; channelId: Hex }>;
};

type Signed = { payload: PaymentPayload; requirements: PaymentRequirements };

/** A deposit payload as the official client builds one: authorization, then a voucher for `max`. */
async function deposit(
  payerKey: Hex,
  config: ChannelConfig,
  reqs: PaymentRequirements,
  o: DepositOptions = {},
): Promise<Signed> {
  const id = o.channelId ?? (await channelIdOnChain(config));
  const amount = o.amount ?? 10_000n;
  const max = o.max ?? 1_000n;
  const signer = privateKeyToAccount(o.authorizationKey ?? payerKey);
  const payer = privateKeyToAccount(payerKey).address;
  let authorization: Record<string, unknown>;
  if ((o.method ?? "eip3009") === "eip3009") {
    const salt = randomBytes32();
    const validAfter = o.validAfter ?? 0n;
    const validBefore = o.validBefore ?? BigInt(now() + 300);
    const nonce = keccak256(
      encodeAbiParameters([{ type: "bytes32" }, { type: "uint256" }], [id, BigInt(salt)]),
    );
    const signature = await signer.signTypedData({
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
        from: payer,
        to: ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        value: amount,
        validAfter,
        validBefore,
        nonce,
      },
    });
    authorization = {
      erc3009Authorization: {
        validAfter: validAfter.toString(),
        validBefore: validBefore.toString(),
        salt,
        signature,
      },
    };
  } else {
    const p = {
      from: o.permit2?.from ?? payer,
      spender: o.permit2?.spender ?? PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
      amount: o.permit2?.amount ?? amount,
      deadline: o.permit2?.deadline ?? BigInt(now() + 300),
      channelId: o.permit2?.channelId ?? id,
      nonce: BigInt(randomBytes32()),
    };
    const signature = await signer.signTypedData({
      domain: { name: "Permit2", chainId: devnet.chainId, verifyingContract: PERMIT2_ADDRESS },
      types: {
        PermitWitnessTransferFrom: [
          { name: "permitted", type: "TokenPermissions" },
          { name: "spender", type: "address" },
          { name: "nonce", type: "uint256" },
          { name: "deadline", type: "uint256" },
          { name: "witness", type: "DepositWitness" },
        ],
        TokenPermissions: [
          { name: "token", type: "address" },
          { name: "amount", type: "uint256" },
        ],
        DepositWitness: [{ name: "channelId", type: "bytes32" }],
      },
      primaryType: "PermitWitnessTransferFrom",
      message: {
        permitted: { token: USDC_ADDRESS, amount: p.amount },
        spender: p.spender,
        nonce: p.nonce,
        deadline: p.deadline,
        witness: { channelId: p.channelId },
      },
    });
    authorization = {
      permit2Authorization: {
        from: p.from,
        permitted: { token: USDC_ADDRESS, amount: p.amount.toString() },
        spender: p.spender,
        nonce: p.nonce.toString(),
        deadline: p.deadline.toString(),
        witness: { channelId: p.channelId },
        signature,
      },
    };
  }
  const voucherSignature = await signVoucher(o.voucherKey ?? payerKey, id, max);
  return {
    payload: {
      x402Version: 2,
      accepted: reqs,
      payload: {
        type: "deposit",
        channelConfig: config,
        voucher: { channelId: id, maxClaimableAmount: max.toString(), signature: voucherSignature },
        deposit: { amount: amount.toString(), authorization },
      },
    },
    requirements: reqs,
  };
}

/**
 * `signed` (a Permit2 deposit) with an `eip2612GasSponsoring` extension: a USDC permit to Permit2 for the
 * deposit, signed as the official client signs it (the token's nonce, the Permit2 deadline).
 */
async function withPermit(
  signed: Signed,
  payerKey: Hex,
  o: Partial<Record<"spender" | "amount" | "from", string>> = {},
): Promise<Signed> {
  const owner = privateKeyToAccount(payerKey);
  const inner = signed.payload.payload as {
    deposit: { amount: string; authorization: { permit2Authorization: { deadline: string } } };
  };
  const amount = o.amount ?? inner.deposit.amount;
  const deadline = inner.deposit.authorization.permit2Authorization.deadline;
  const nonce = await devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: mockUsdcAbi,
    functionName: "nonces",
    args: [owner.address],
  });
  const signature = await owner.signTypedData({
    domain: {
      name: USDC_NAME,
      version: USDC_VERSION,
      chainId: devnet.chainId,
      verifyingContract: USDC_ADDRESS,
    },
    types: {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "Permit",
    message: {
      owner: owner.address,
      spender: PERMIT2_ADDRESS,
      value: BigInt(amount),
      nonce,
      deadline: BigInt(deadline),
    },
  });
  const info = {
    from: o.from ?? owner.address,
    asset: USDC_ADDRESS,
    spender: o.spender ?? PERMIT2_ADDRESS,
    amount,
    nonce: nonce.toString(),
    deadline,
    signature,
    version: "1",
  };
  return {
    payload: { ...signed.payload, extensions: { eip2612GasSponsoring: { info } } } as PaymentPayload,
    requirements: signed.requirements,
  };
}

/** A voucher (or a client's refund request) on `config`. */
async function voucher(
  payerKey: Hex,
  config: ChannelConfig,
  reqs: PaymentRequirements,
  max: bigint,
  o: { type?: "voucher" | "refund"; voucherKey?: Hex; channelId?: Hex } = {},
): Promise<Signed> {
  const id = o.channelId ?? (await channelIdOnChain(config));
  const signature = await signVoucher(o.voucherKey ?? payerKey, id, max);
  return {
    payload: {
      x402Version: 2,
      accepted: reqs,
      payload: {
        type: o.type ?? "voucher",
        channelConfig: config,
        voucher: { channelId: id, maxClaimableAmount: max.toString(), signature },
      },
    },
    requirements: reqs,
  };
}

/** A server-authored action, sent as the channel manager sends it. */
function action(payTo: Address, payload: Record<string, unknown>): Signed {
  const reqs = managerRequirements(payTo);
  return { payload: { x402Version: 2, accepted: reqs, payload }, requirements: reqs };
}

type Verdict = { isValid: boolean; invalidReason?: string } | "rejected";
type Outcome = { success: boolean; errorReason?: string } | "rejected";

async function post(route: "verify" | "settle", signed: Signed): Promise<Response> {
  return fetch(`${ours.url}/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      x402Version: 2,
      paymentPayload: signed.payload,
      paymentRequirements: signed.requirements,
    }),
  });
}

async function oursVerify(signed: Signed): Promise<VerifyResponse | "rejected"> {
  const response = await post("verify", signed);
  if (response.status === 400) return "rejected";
  expect(response.status).toBe(200);
  return (await response.json()) as VerifyResponse;
}

async function officialVerify(signed: Signed): Promise<VerifyResponse | "rejected"> {
  try {
    return await official.verify(signed.payload, signed.requirements);
  } catch {
    return "rejected";
  }
}

async function oursSettle(signed: Signed): Promise<SettleResponse | "rejected"> {
  const response = await post("settle", signed);
  if (response.status === 400) return "rejected";
  expect(response.status).toBe(200);
  return (await response.json()) as SettleResponse;
}

async function officialSettle(signed: Signed): Promise<SettleResponse | "rejected"> {
  try {
    return await official.settle(signed.payload, signed.requirements);
  } catch {
    return "rejected";
  }
}

const verdict = (r: VerifyResponse | "rejected"): Verdict =>
  r === "rejected" ? r : { isValid: r.isValid, ...(r.isValid ? {} : { invalidReason: r.invalidReason }) };
const outcome = (r: SettleResponse | "rejected"): Outcome =>
  r === "rejected" ? r : { success: r.success, ...(r.success ? {} : { errorReason: r.errorReason }) };

const E = (suffix: string) => `invalid_batch_settlement_evm_${suffix}`;
const invalid = (suffix: string): Verdict => ({ isValid: false, invalidReason: E(suffix) });

describe("batch-settlement verify: parity with the official facilitator on the same devnet", () => {
  // A funded channel (payer 0 → payee 3) with 2,000 of 10,000 claimed, for the voucher and refund cases.
  let funded: ChannelConfig;
  let fundedId: Hex;

  beforeAll(async () => {
    const payTo = account(3).address;
    funded = channel(account(0).privateKey, payTo);
    fundedId = await channelIdOnChain(funded);
    const opened = await oursSettle(await deposit(account(0).privateKey, funded, requirements(payTo)));
    expect(opened).toMatchObject({ success: true });
    const row = {
      voucher: { channel: funded, maxClaimableAmount: "2000" },
      signature: await signVoucher(account(0).privateKey, fundedId, 2_000n),
      totalClaimed: "2000",
    };
    expect(await oursSettle(action(payTo, { type: "claim", claims: [row] }))).toMatchObject({
      success: true,
    });
    expect(await channels(fundedId)).toEqual({ balance: 10_000n, totalClaimed: 2_000n });
  });

  const payee = () => account(3).address;
  const payerKey = () => account(0).privateKey;
  const fresh = (overrides: Partial<ChannelConfig> = {}) => channel(payerKey(), payee(), overrides);

  const cases: { name: string; expected: Verdict; build: () => Promise<Signed> }[] = [
    {
      name: "a deposit by EIP-3009",
      expected: { isValid: true },
      build: () => deposit(payerKey(), fresh(), requirements(payee())),
    },
    {
      name: "a deposit by Permit2",
      expected: { isValid: true },
      build: () =>
        deposit(
          account(1).privateKey,
          channel(account(1).privateKey, payee()),
          requirements(payee(), { assetTransferMethod: "permit2" }),
          {
            method: "permit2",
          },
        ),
    },
    {
      name: "a Permit2 deposit recognised by its authorization alone",
      expected: { isValid: true },
      build: () =>
        deposit(account(1).privateKey, channel(account(1).privateKey, payee()), requirements(payee()), {
          method: "permit2",
        }),
    },
    {
      name: "a top-up deposit on a funded channel",
      expected: { isValid: true },
      build: () => deposit(payerKey(), funded, requirements(payee()), { max: 12_000n }),
    },
    {
      name: "a voucher above what is claimed",
      expected: { isValid: true },
      build: () => voucher(payerKey(), funded, requirements(payee()), 3_000n),
    },
    {
      name: "a refund request at what is claimed",
      expected: { isValid: true },
      build: () => voucher(payerKey(), funded, requirements(payee()), 2_000n, { type: "refund" }),
    },
    {
      name: "a voucher for another channel's id",
      expected: invalid("channel_id_mismatch"),
      build: async () =>
        voucher(payerKey(), funded, requirements(payee()), 3_000n, {
          channelId: await channelIdOnChain(fresh()),
        }),
    },
    {
      name: "a channel paying someone else",
      expected: invalid("receiver_mismatch"),
      build: () => deposit(payerKey(), fresh({ receiver: account(4).address }), requirements(payee())),
    },
    {
      name: "a channel naming another receiver authorizer",
      expected: invalid("receiver_authorizer_mismatch"),
      build: () =>
        deposit(payerKey(), fresh({ receiverAuthorizer: account(8).address }), requirements(payee())),
    },
    {
      name: "requirements without a receiver authorizer",
      expected: invalid("receiver_authorizer_mismatch"),
      build: () =>
        voucher(payerKey(), funded, requirements(payee(), { receiverAuthorizer: zeroAddress }), 3_000n),
    },
    {
      name: "a channel in another token",
      expected: invalid("token_mismatch"),
      build: () =>
        deposit(
          payerKey(),
          fresh({ token: "0x000000000000000000000000000000000000dEaD" }),
          requirements(payee()),
        ),
    },
    {
      name: "a withdrawal delay other than advertised",
      expected: invalid("withdraw_delay_mismatch"),
      build: () => deposit(payerKey(), fresh({ withdrawDelay: 1_800 }), requirements(payee())),
    },
    {
      name: "a withdrawal delay under the contract's minimum",
      expected: invalid("withdraw_delay_out_of_range"),
      build: () =>
        deposit(
          payerKey(),
          fresh({ withdrawDelay: 60 }),
          requirements(payee(), { withdrawDelay: undefined }),
        ),
    },
    {
      name: "a voucher signed by a stranger",
      expected: invalid("voucher_signature"),
      build: () =>
        voucher(payerKey(), funded, requirements(payee()), 3_000n, { voucherKey: account(8).privateKey }),
    },
    {
      name: "a deposit whose voucher a stranger signed",
      expected: invalid("voucher_signature"),
      build: () => deposit(payerKey(), fresh(), requirements(payee()), { voucherKey: account(8).privateKey }),
    },
    {
      name: "a deposit whose payer signs vouchers itself (no payer authorizer)",
      expected: { isValid: true },
      build: () => deposit(payerKey(), fresh({ payerAuthorizer: zeroAddress }), requirements(payee())),
    },
    {
      name: "a deposit without a payer authorizer whose voucher a stranger signed",
      expected: invalid("voucher_signature"),
      build: () =>
        deposit(payerKey(), fresh({ payerAuthorizer: zeroAddress }), requirements(payee()), {
          voucherKey: account(8).privateKey,
        }),
    },
    {
      name: "a voucher on a channel never funded",
      expected: invalid("channel_not_found"),
      build: () => voucher(payerKey(), fresh(), requirements(payee()), 1_000n),
    },
    {
      name: "a voucher above the balance",
      expected: invalid("cumulative_exceeds_balance"),
      build: () => voucher(payerKey(), funded, requirements(payee()), 10_001n),
    },
    {
      name: "a deposit whose voucher exceeds balance plus deposit",
      expected: invalid("cumulative_exceeds_balance"),
      build: () => deposit(payerKey(), funded, requirements(payee()), { amount: 1_000n, max: 11_001n }),
    },
    {
      name: "a voucher at what is claimed",
      expected: invalid("cumulative_below_claimed"),
      build: () => voucher(payerKey(), funded, requirements(payee()), 2_000n),
    },
    {
      name: "a refund request below what is claimed",
      expected: invalid("cumulative_below_claimed"),
      build: () => voucher(payerKey(), funded, requirements(payee()), 1_999n, { type: "refund" }),
    },
    {
      name: "a top-up whose voucher does not exceed what is claimed",
      expected: invalid("cumulative_below_claimed"),
      build: () => deposit(payerKey(), funded, requirements(payee()), { max: 2_000n }),
    },
    {
      name: "an EIP-3009 deposit expiring within 6 s",
      expected: invalid("payload_authorization_valid_before"),
      build: () => deposit(payerKey(), fresh(), requirements(payee()), { validBefore: BigInt(now() + 3) }),
    },
    {
      name: "an EIP-3009 deposit not valid yet",
      expected: invalid("payload_authorization_valid_after"),
      build: () => deposit(payerKey(), fresh(), requirements(payee()), { validAfter: BigInt(now() + 120) }),
    },
    {
      name: "an EIP-3009 deposit signed by a stranger",
      expected: invalid("receive_authorization_signature"),
      build: () =>
        deposit(payerKey(), fresh(), requirements(payee()), { authorizationKey: account(8).privateKey }),
    },
    {
      name: "an EIP-3009 deposit without the token's domain",
      expected: invalid("missing_eip712_domain"),
      build: () => deposit(payerKey(), fresh(), requirements(payee(), { name: undefined })),
    },
    {
      name: "an EIP-3009 route sent a Permit2 authorization",
      expected: invalid("erc3009_authorization_required"),
      build: () =>
        deposit(
          account(1).privateKey,
          channel(account(1).privateKey, payee()),
          requirements(payee(), { assetTransferMethod: "eip3009" }),
          {
            method: "permit2",
          },
        ),
    },
    {
      name: "a Permit2 route sent an EIP-3009 authorization",
      expected: invalid("payload_type"),
      build: () => deposit(payerKey(), fresh(), requirements(payee(), { assetTransferMethod: "permit2" })),
    },
    {
      name: "a deposit beyond the payer's balance",
      expected: invalid("insufficient_balance"),
      build: () => {
        const broke = generatePrivateKey();
        return deposit(broke, channel(broke, payee()), requirements(payee()));
      },
    },
    ...permit2Cases(),
    {
      name: "a Permit2 deposit without an allowance to Permit2",
      expected: invalid("permit2_allowance_required"),
      build: () =>
        deposit(account(2).privateKey, channel(account(2).privateKey, payee()), requirements(payee()), {
          method: "permit2",
        }),
    },
    {
      name: "a Permit2 deposit sponsored by an EIP-2612 permit",
      expected: { isValid: true },
      build: async () => withPermit(await sponsored(), account(2).privateKey),
    },
    {
      name: "an EIP-2612 permit of another amount",
      expected: invalid("eip2612_amount_mismatch"),
      build: async () => withPermit(await sponsored(), account(2).privateKey, { amount: "9999" }),
    },
    {
      name: "an EIP-2612 permit to another spender",
      expected: { isValid: false, invalidReason: "eip2612_spender_not_permit2" },
      build: async () =>
        withPermit(await sponsored(), account(2).privateKey, { spender: PERMIT2_DEPOSIT_COLLECTOR_ADDRESS }),
    },
    {
      name: "an EIP-2612 permit from someone else",
      expected: { isValid: false, invalidReason: "eip2612_from_mismatch" },
      build: async () => withPermit(await sponsored(), account(2).privateKey, { from: account(8).address }),
    },
    {
      name: "a deposit sponsored by an ERC-20 approval no extension is registered for",
      expected: invalid("erc20_approval_unavailable"),
      build: async () => {
        const s = await sponsored();
        const info = {
          from: account(2).address,
          asset: USDC_ADDRESS,
          spender: PERMIT2_ADDRESS,
          amount: "10000",
          signedTransaction: "0x02f8",
          version: "1",
        };
        return {
          ...s,
          payload: { ...s.payload, extensions: { erc20ApprovalGasSponsoring: { info } } } as PaymentPayload,
        };
      },
    },
    {
      name: "a server's claim sent to /verify",
      expected: invalid("payload_type"),
      build: async () => {
        const s = action(payee(), { type: "claim", claims: [] });
        return { payload: s.payload, requirements: requirements(payee()) };
      },
    },
    {
      name: "accepted under another scheme",
      expected: invalid("scheme"),
      build: async () => {
        const s = await voucher(payerKey(), funded, requirements(payee()), 3_000n);
        return { ...s, payload: { ...s.payload, accepted: { ...s.requirements, scheme: "exact" } } };
      },
    },
    {
      name: "accepted on another network",
      expected: invalid("network_mismatch"),
      build: async () => {
        const s = await voucher(payerKey(), funded, requirements(payee()), 3_000n);
        return { ...s, payload: { ...s.payload, accepted: { ...s.requirements, network: "eip155:84532" } } };
      },
    },
  ];

  /** A Permit2 deposit of payer 2, who has no allowance to Permit2. */
  const sponsored = () =>
    deposit(
      account(2).privateKey,
      channel(account(2).privateKey, payee()),
      requirements(payee(), { assetTransferMethod: "permit2" }),
      { method: "permit2" },
    );

  function permit2Cases() {
    const p2 = (o: () => DepositOptions["permit2"]) => () =>
      deposit(
        account(1).privateKey,
        channel(account(1).privateKey, payee()),
        requirements(payee(), { assetTransferMethod: "permit2" }),
        {
          method: "permit2",
          permit2: o(),
        },
      );
    return [
      {
        name: "a Permit2 deposit to another spender",
        expected: invalid("permit2_invalid_spender"),
        build: p2(() => ({ spender: PERMIT2_ADDRESS })),
      },
      {
        name: "a Permit2 deposit of another amount",
        expected: invalid("permit2_amount_mismatch"),
        build: p2(() => ({ amount: 9_999n })),
      },
      {
        name: "a Permit2 deposit from someone else",
        expected: invalid("permit2_invalid_signature"),
        build: p2(() => ({ from: account(8).address })),
      },
      {
        name: "a Permit2 deposit bound to another channel",
        expected: invalid("channel_id_mismatch"),
        build: p2(() => ({ channelId: keccak256(toHex("x")) })),
      },
      {
        name: "a Permit2 deposit past its deadline",
        expected: invalid("permit2_deadline_expired"),
        build: p2(() => ({ deadline: BigInt(now() + 2) })),
      },
      {
        name: "a Permit2 deposit signed by a stranger",
        expected: invalid("permit2_invalid_signature"),
        build: () =>
          deposit(
            account(1).privateKey,
            channel(account(1).privateKey, payee()),
            requirements(payee(), { assetTransferMethod: "permit2" }),
            {
              method: "permit2",
              authorizationKey: account(8).privateKey,
            },
          ),
      },
    ];
  }

  for (const c of cases) {
    it(c.name, async () => {
      const signed = await c.build();
      const [mine, theirs] = await Promise.all([oursVerify(signed), officialVerify(signed)]);
      expect(verdict(theirs), "official").toEqual(c.expected);
      expect(verdict(mine), "ours").toEqual(c.expected);
      if (mine !== "rejected" && theirs !== "rejected" && mine.isValid) {
        // The channel snapshot (deposits: before the deposit) and the payer, alike.
        expect(mine.extra).toEqual(theirs.extra);
        expect(mine.payer?.toLowerCase()).toBe(theirs.payer?.toLowerCase());
      }
    });
  }

  it("answers the voucher's snapshot with the chain's numbers", async () => {
    const mine = await oursVerify(await voucher(payerKey(), funded, requirements(payee()), 3_000n));
    expect(mine).toMatchObject({
      isValid: true,
      extra: {
        channelId: fundedId,
        balance: "10000",
        totalClaimed: "2000",
        withdrawRequestedAt: 0,
        refundNonce: "0",
      },
    });
  });
});

describe("batch-settlement settle: parity on twin channels", () => {
  // Ours settles channels paying one fresh payee, the official one channels paying another.
  const ourPayee = privateKeyToAccount(generatePrivateKey()).address;
  const theirPayee = privateKeyToAccount(generatePrivateKey()).address;
  const twins = [
    { name: "ours", payTo: () => ourPayee, settle: oursSettle },
    { name: "official", payTo: () => theirPayee, settle: officialSettle },
  ] as const;

  /** Builds an action per twin (the same shape, each its own payee) and asks each its own. */
  async function both(build: (payTo: Address) => Promise<Signed> | Signed) {
    const answers: (SettleResponse | "rejected")[] = [];
    for (const twin of twins) answers.push(await twin.settle(await build(twin.payTo())));
    const [mine, theirs] = answers as [SettleResponse | "rejected", SettleResponse | "rejected"];
    expect(outcome(mine), `ours ${JSON.stringify(mine)}`).toEqual(outcome(theirs));
    return { mine, theirs };
  }

  it("deposits by each collector, claims, settles, refunds, then refuses what is left to do", async () => {
    const payerKey = account(0).privateKey;
    const configs = new Map<Address, ChannelConfig>();
    const configOf = (payTo: Address) => {
      let c = configs.get(payTo);
      if (!c) {
        c = channel(payerKey, payTo);
        configs.set(payTo, c);
      }
      return c;
    };

    // 1. Deposits: EIP-3009 opens each twin channel, Permit2 tops it up.
    const opened = await both((payTo) =>
      deposit(payerKey, configOf(payTo), requirements(payTo), { max: 1_000n }),
    );
    expect(opened.mine).toMatchObject({ success: true, amount: "10000" });
    if (opened.mine === "rejected" || opened.theirs === "rejected") throw new Error("rejected");
    const ourState = (opened.mine.extra as { channelState: Record<string, unknown> }).channelState;
    const theirState = (opened.theirs.extra as { channelState: Record<string, unknown> }).channelState;
    expect({ ...ourState, channelId: "" }).toEqual({ ...theirState, channelId: "" });
    expect(ourState).toMatchObject({ balance: "10000", totalClaimed: "0", refundNonce: "0" });
    const ourTx = await devnet.client.getTransactionReceipt({ hash: opened.mine.transaction as Hex });
    expect(parseEventLogs({ abi: x402BatchSettlementAbi, logs: ourTx.logs }).map((e) => e.eventName)).toEqual(
      ["ChannelCreated", "Deposited"],
    );

    const topped = await both((payTo) =>
      deposit(payerKey, configOf(payTo), requirements(payTo, { assetTransferMethod: "permit2" }), {
        method: "permit2",
        amount: 5_000n,
        max: 2_500n,
      }),
    );
    expect(topped.mine).toMatchObject({
      success: true,
      amount: "5000",
      extra: { channelState: { balance: "15000" } },
    });

    // A payer without an allowance deposits with an EIP-2612 permit the collector applies first.
    const sponsoredDeposit = await both(async (payTo) =>
      withPermit(
        await deposit(
          account(2).privateKey,
          channel(account(2).privateKey, payTo),
          requirements(payTo, { assetTransferMethod: "permit2" }),
          { method: "permit2", amount: 3_000n },
        ),
        account(2).privateKey,
      ),
    );
    expect(sponsoredDeposit.mine).toMatchObject({ success: true, amount: "3000" });

    // 2. A deposit whose voucher a stranger signed is refused before anything is sent.
    await both((payTo) =>
      deposit(payerKey, configOf(payTo), requirements(payTo), { voucherKey: account(8).privateKey }),
    );

    // 3. Claims: the facilitator's authorizer signs the batch; a row naming another authorizer is refused,
    // a row over its voucher's ceiling fails in simulation.
    const row = async (payTo: Address, max: bigint, total: bigint, config = configOf(payTo)) => ({
      voucher: { channel: config, maxClaimableAmount: max.toString() },
      signature: await signVoucher(payerKey, await channelIdOnChain(config), max),
      totalClaimed: total.toString(),
    });
    const claimed = await both(async (payTo) =>
      action(payTo, { type: "claim", claims: [await row(payTo, 2_500n, 2_500n)] }),
    );
    expect(claimed.mine).toMatchObject({
      success: true,
      transaction: expect.stringMatching(/^0x[0-9a-f]{64}$/),
    });
    const ourId = await channelIdOnChain(configOf(ourPayee));
    expect(await channels(ourId)).toEqual({ balance: 15_000n, totalClaimed: 2_500n });

    const stranger = channel(payerKey, ourPayee, { receiverAuthorizer: account(8).address });
    const mismatch = await both(async (payTo) =>
      action(payTo, {
        type: "claim",
        claims: [await row(payTo, 10n, 10n, { ...stranger, receiver: payTo })],
      }),
    );
    expect(outcome(mismatch.mine)).toEqual({ success: false, errorReason: E("authorizer_address_mismatch") });
    const overCeiling = await both(async (payTo) =>
      action(payTo, { type: "claim", claims: [await row(payTo, 3_000n, 3_001n)] }),
    );
    expect(outcome(overCeiling.mine)).toEqual({ success: false, errorReason: E("claim_simulation_failed") });

    // 4. Settle pays each payee what was claimed; again, there is nothing to settle.
    const payeeBefore = await usdcBalance(ourPayee);
    const settled = await both((payTo) =>
      action(payTo, { type: "settle", receiver: payTo, token: USDC_ADDRESS }),
    );
    expect(settled.mine).toMatchObject({ success: true, amount: "2500" });
    expect(settled.theirs).toMatchObject({ success: true, amount: "2500" });
    expect(await usdcBalance(ourPayee)).toBe(payeeBefore + 2_500n);
    expect(await usdcBalance(theirPayee)).toBe(2_500n);
    const nothing = await both((payTo) =>
      action(payTo, { type: "settle", receiver: payTo, token: USDC_ADDRESS }),
    );
    expect(outcome(nothing.mine)).toEqual({ success: false, errorReason: E("nothing_to_settle") });

    // 5. An enriched refund with one more claim row returns the rest to the payer, in one multicall.
    const refundOf = async (payTo: Address, amount: bigint, nonce: string, claims: unknown[]) => {
      const config = configOf(payTo);
      const id = await channelIdOnChain(config);
      return action(payTo, {
        type: "refund",
        channelConfig: config,
        voucher: {
          channelId: id,
          maxClaimableAmount: "3000",
          signature: await signVoucher(payerKey, id, 3_000n),
        },
        amount: amount.toString(),
        refundNonce: nonce,
        claims,
      });
    };
    const payerBefore = await usdcBalance(account(0).address);
    const refunded = await both(async (payTo) =>
      refundOf(payTo, 12_000n, "0", [await row(payTo, 3_000n, 3_000n)]),
    );
    expect(refunded.mine).toMatchObject({
      success: true,
      amount: "12000",
      extra: { channelState: { balance: "3000", totalClaimed: "3000", refundNonce: "1" } },
    });
    expect(refunded.theirs).toMatchObject({ success: true, amount: "12000" });
    expect(await channels(ourId)).toEqual({ balance: 3_000n, totalClaimed: 3_000n });
    // Both twins refunded the same payer.
    expect(await usdcBalance(account(0).address)).toBe(payerBefore + 24_000n);

    // 6. Nothing is left to refund; a plain voucher and a client's refund request are not settle actions.
    const empty = await both((payTo) => refundOf(payTo, 1n, "1", []));
    expect(outcome(empty.mine)).toEqual({ success: false, errorReason: E("refund_no_balance") });
    const plain = await both((payTo) => voucher(payerKey, configOf(payTo), requirements(payTo), 3_000n));
    expect(outcome(plain.mine)).toEqual({ success: false, errorReason: E("payload_type") });
    const clientRefund = await both((payTo) =>
      voucher(payerKey, configOf(payTo), requirements(payTo), 3_000n, { type: "refund" }),
    );
    expect(outcome(clientRefund.mine)).toEqual({ success: false, errorReason: E("payload_type") });
  });

  it("refunds a channel with a pending withdrawal and reads the cleared state back", async () => {
    const payerKey = account(1).privateKey;
    const configs = new Map<Address, ChannelConfig>();
    const configOf = (payTo: Address) => {
      let c = configs.get(payTo);
      if (!c) {
        c = channel(payerKey, payTo);
        configs.set(payTo, c);
      }
      return c;
    };
    await both((payTo) => deposit(payerKey, configOf(payTo), requirements(payTo), { amount: 6_000n }));
    // The payer starts leaving on its own: a timed withdrawal of 5,000 on each twin.
    for (const twin of twins) {
      const hash = await devnet.client.writeContract({
        account: privateKeyToAccount(payerKey),
        chain: null,
        address: X402_BATCH_SETTLEMENT_ADDRESS,
        abi: x402BatchSettlementAbi,
        functionName: "initiateWithdraw",
        args: [configOf(twin.payTo()), 5_000n],
      });
      await devnet.client.waitForTransactionReceipt({ hash });
    }
    const refunded = await both(async (payTo) => {
      const config = configOf(payTo);
      const id = await channelIdOnChain(config);
      return action(payTo, {
        type: "refund",
        channelConfig: config,
        voucher: { channelId: id, maxClaimableAmount: "0", signature: await signVoucher(payerKey, id, 0n) },
        amount: "6000",
        refundNonce: "0",
        claims: [],
      });
    });
    if (refunded.mine === "rejected" || refunded.theirs === "rejected") throw new Error("rejected");
    expect(refunded.mine).toMatchObject({
      success: true,
      amount: "6000",
      extra: { channelState: { balance: "0", totalClaimed: "0", withdrawRequestedAt: 0, refundNonce: "1" } },
    });
    const strip = (r: SettleResponse) => ({
      amount: r.amount,
      state: { ...(r.extra as { channelState: object }).channelState, channelId: "" },
    });
    expect(strip(refunded.mine)).toEqual(strip(refunded.theirs));
    const [pendingAmount] = await devnet.client.readContract({
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "pendingWithdrawals",
      args: [await channelIdOnChain(configOf(ourPayee))],
    });
    expect(pendingAmount).toBe(0n);
  });
});

describe("batch-settlement deposits settle at most once", () => {
  it("sends one deposit for N concurrent settles of the same payload and answers each with it", async () => {
    const payerKey = account(9).privateKey;
    const payTo = account(3).address;
    const config = channel(payerKey, payTo);
    const id = await channelIdOnChain(config);
    const signed = await deposit(payerKey, config, requirements(payTo, { assetTransferMethod: "permit2" }), {
      method: "permit2",
      amount: 4_000n,
    });
    const payerBefore = await usdcBalance(account(9).address);
    const answers = await Promise.all(Array.from({ length: 6 }, () => oursSettle(signed)));
    const transactions = new Set(answers.map((a) => (a === "rejected" ? a : a.transaction)));
    for (const a of answers) expect(a).toMatchObject({ success: true, amount: "4000" });
    expect(transactions.size).toBe(1);
    expect(
      answers.filter((a) => a !== "rejected" && (a.extra as { duplicate?: boolean }).duplicate),
    ).toHaveLength(5);
    expect(await channels(id)).toEqual({ balance: 4_000n, totalClaimed: 0n });
    expect(await usdcBalance(account(9).address)).toBe(payerBefore - 4_000n);
    // Asked again later, it is the same settlement, not a second transfer.
    const again = await oursSettle(signed);
    expect(again).toMatchObject({
      success: true,
      transaction: [...transactions][0],
      extra: { duplicate: true },
    });
    expect(await channels(id)).toEqual({ balance: 4_000n, totalClaimed: 0n });
  });

  it("counts its requests and its JSON-RPC calls on /metrics", async () => {
    const text = await (await fetch(`${ours.url}/metrics`)).text();
    expect(text).toMatch(/x402_facilitator_requests_total\{route="settle",outcome="settled",code=""\} [1-9]/);
    expect(text).toMatch(
      /x402_facilitator_requests_total\{route="verify",outcome="invalid",code="invalid_batch_settlement_evm_voucher_signature"\} [1-9]/,
    );
    expect(text).toMatch(/x402_facilitator_rpc_calls_total\{method="eth_call"\} [1-9]/);
  });

  it("takes the channel manager's zero maxTimeoutSeconds for batch-settlement only", async () => {
    const nobody = privateKeyToAccount(generatePrivateKey()).address;
    const settle = action(nobody, {
      type: "settle",
      receiver: nobody,
      token: USDC_ADDRESS,
    });
    expect(await oursSettle(settle)).toMatchObject({ success: false, errorReason: E("nothing_to_settle") });
    const exact = { ...settle.requirements, scheme: "exact" };
    const response = await post("settle", {
      payload: { ...settle.payload, accepted: exact },
      requirements: exact,
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_payload" });
  });

  it("advertises the receiver authorizer on /supported", async () => {
    const supported = (await (await fetch(`${ours.url}/supported`)).json()) as {
      kinds: unknown[];
      signers: unknown;
    };
    expect(supported.kinds).toEqual([
      {
        x402Version: 2,
        scheme: "batch-settlement",
        network: BASE_NETWORK,
        extra: { receiverAuthorizer: authorizer() },
      },
    ]);
    expect(supported.kinds).toEqual(official.getSupported().kinds);
    expect(supported.signers).toEqual({ "eip155:*": [account(5).address] });
  });
});
