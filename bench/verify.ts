/**
 * The verification hot path, step by step, in one process with tinybench, on the same payloads:
 * - digest: our hand-written EIP-712 digest against viem's `hashTypedData` (what the official facilitator uses);
 * - recover: native secp256k1 recovery against viem's `recoverAddress` (@noble/curves);
 * - pure verify: our checks with no chain against the official `ExactEvmScheme` on a chain stub, and against
 *   viem's `verifyTypedData`;
 * - chain verify: our `ExactEvmScheme` against the official `x402Facilitator`, one call at a time, on a devnet
 *   (simulation on for both);
 * - sign: one signed authorization as a load generator makes it, against the official client's
 *   `createPaymentPayload` (one thread: per core).
 */
import { x402Client } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme as OfficialExactEvmScheme } from "@x402/evm/exact/facilitator";
import { getAddress, type Hex, hashTypedData, recoverAddress, verifyTypedData } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { USDC_ADDRESS } from "../src/chain/index.ts";
import type { ChainChecks } from "../src/facilitator/exact-evm/chain-checks.ts";
import { verifyExactEvm } from "../src/facilitator/exact-evm/verify.ts";
import { ExactEvmScheme } from "../src/facilitator/index.ts";
import {
  authorizationFor,
  domainFromRequirements,
  eip712DomainSeparator,
  type PaymentPayload,
  type PaymentRequired,
  type PaymentRequirements,
  parseExactEvmPayload,
  recoverAddress as recoverNative,
  signTransferAuthorization,
  transferAuthorizationDigest,
  transferWithAuthorizationPrimaryType,
  transferWithAuthorizationTypes,
  typedDataMessage,
} from "../src/protocol/index.ts";
import { officialChainStub } from "../test/support/official-facilitator.ts";
import { usdcRequirements } from "../test/support/payments.ts";
import { benchDevnet, type SignedPayment, signPayments } from "./lib/devnet.ts";
import { measure } from "./lib/measure.ts";
import { benchArgs, isMain, log, type Results, sideBySide, table } from "./lib/report.ts";
import { officialSchemes } from "./official-facilitator.ts";

export type VerifyBenchOptions = { quick: boolean };

/** Our verification with the chain stubbed the same way: asset deployed, no simulation. */
const stubChain = {
  assetDeployed: async () => true,
  hasCode: async () => false,
} as unknown as ChainChecks;

export async function benchVerify(options: VerifyBenchOptions): Promise<Results> {
  const time = options.quick ? 300 : 1500;
  const key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as Hex;
  const payTo = getAddress("0x209693bc6afc0c5328ba36faf03c514ef312287c");
  const requirements = usdcRequirements(payTo, 10_000n);
  const payments = signPayments([{ privateKey: key }], payTo, 512);
  const parsed = payments.map((p) => parseExactEvmPayload(p.payload.payload));
  const domain = domainFromRequirements(requirements);
  const viemDomain = { ...domain, chainId: Number(domain.chainId), verifyingContract: USDC_ADDRESS };
  const message = (i: number) => {
    const a = parsed[i % parsed.length]?.authorization;
    if (!a) throw new Error("no payload");
    return typedDataMessage(a);
  };
  const digests = parsed.map((p) =>
    transferAuthorizationDigest(eip712DomainSeparator(domain), p.authorization),
  );
  const hexDigests = digests.map((d) => `0x${Buffer.from(d).toString("hex")}` as Hex);
  const at = <T>(list: readonly T[], i: number): T => list[i % list.length] as T;
  let i = 0;

  log("verify: digest and recovery");
  const steps = await measure(time, {
    "digest ours": () =>
      transferAuthorizationDigest(eip712DomainSeparator(domain), at(parsed, i++).authorization),
    "digest viem": () =>
      hashTypedData({
        domain: viemDomain,
        types: transferWithAuthorizationTypes,
        primaryType: transferWithAuthorizationPrimaryType,
        message: message(i++),
      }),
    "recover ours": () => recoverNative(at(digests, i), at(parsed, i++).signature),
    "recover viem": () => recoverAddress({ hash: at(hexDigests, i), signature: at(parsed, i++).signature }),
  });

  log("verify: pure verification");
  const official = new OfficialExactEvmScheme(officialChainStub(requirements.asset));
  const pure = await measure(time, {
    ours: () => {
      const p = at(payments, i++);
      return verifyExactEvm(stubChain, p.payload, p.requirements, parseExactEvmPayload(p.payload.payload), {
        simulate: false,
        validBeforeBufferSeconds: 6,
      });
    },
    official: () => {
      const p = at(payments, i++);
      return official.verify(p.payload, p.requirements);
    },
    viem: () => {
      const p = at(parsed, i);
      return verifyTypedData({
        address: p.authorization.from,
        domain: viemDomain,
        types: transferWithAuthorizationTypes,
        primaryType: transferWithAuthorizationPrimaryType,
        message: message(i++),
        signature: p.signature,
      });
    },
  });

  log("verify: signing (one thread)");
  const account = privateKeyToAccount(key);
  const client = new x402Client();
  registerExactEvmScheme(client, { signer: account });
  const paymentRequired: PaymentRequired = {
    x402Version: 2,
    resource: { url: "http://127.0.0.1/weather", description: "", mimeType: "application/json" },
    accepts: [requirements],
  };
  const from = account.address;
  const signing = await measure(time, {
    ours: () => {
      const authorization = authorizationFor(from, requirements, payTo);
      return { authorization, signature: signTransferAuthorization(key, domain, authorization) };
    },
    official: () => client.createPaymentPayload(paymentRequired),
  });

  log("verify: with chain reads (devnet, simulation on, one call at a time)");
  const chain = await benchChainVerify(time);

  const ratioNote = (yardstick: string) => `official = ${yardstick}; ops/s, one thread`;
  return {
    "verify/digest": {
      ...sideBySide(steps["digest ours"] ?? 0, steps["digest viem"] ?? 0, "ops/s"),
      notes: ratioNote("viem hashTypedData"),
    },
    "verify/recover": {
      ...sideBySide(steps["recover ours"] ?? 0, steps["recover viem"] ?? 0, "ops/s"),
      notes: ratioNote("viem recoverAddress"),
    },
    "verify/pure": {
      ...sideBySide(pure.ours ?? 0, pure.official ?? 0, "ops/s"),
      notes: `${ratioNote("@x402/evm ExactEvmScheme on a chain stub")}; viem verifyTypedData ${Math.round(pure.viem ?? 0)} ops/s`,
    },
    "verify/pure-vs-viem": {
      ...sideBySide(pure.ours ?? 0, pure.viem ?? 0, "ops/s"),
      notes: ratioNote("viem verifyTypedData"),
    },
    "verify/chain": {
      ...sideBySide(chain.ours, chain.official, "ops/s"),
      notes:
        "one verification at a time against anvil, simulation on; official = x402Facilitator + @x402/evm",
    },
    "sign/authorization": {
      ...sideBySide(signing.ours ?? 0, signing.official ?? 0, "ops/s"),
      notes:
        "signed EIP-3009 authorizations per second on one core; official = x402Client.createPaymentPayload",
    },
  };
}

async function benchChainVerify(time: number): Promise<{ ours: number; official: number }> {
  const bench = await benchDevnet({ payers: 20, relayers: 1 });
  const [relayer] = bench.relayers;
  if (!relayer) throw new Error("no relayer");
  const ours = new ExactEvmScheme({
    rpcUrl: bench.devnet.rpcUrl,
    chainId: bench.devnet.chainId,
    relayerKeys: [relayer.privateKey],
  });
  const [official] = officialSchemes(bench.devnet.rpcUrl, bench.devnet.chainId, relayer.privateKey);
  if (!official) throw new Error("no official scheme");
  const payments: SignedPayment[] = signPayments(bench.payers, bench.payee.address, 2_000);
  let i = 0;
  const request = () => {
    const p = payments[i++ % payments.length] as SignedPayment;
    return {
      x402Version: 2 as const,
      paymentPayload: p.payload as PaymentPayload,
      paymentRequirements: p.requirements as PaymentRequirements,
    };
  };
  const check = async (verdict: Promise<{ isValid: boolean; invalidReason?: string }>) => {
    const v = await verdict;
    if (!v.isValid) throw new Error(`verification failed: ${v.invalidReason}`);
  };
  try {
    const rates = await measure(time, {
      ours: () => check(ours.verify(request())),
      official: () => check(official.verify(request())),
    });
    return { ours: rates.ours ?? 0, official: rates.official ?? 0 };
  } finally {
    await ours.close();
    await bench.stop();
  }
}

if (isMain(import.meta.url)) {
  const results = await benchVerify(benchArgs());
  console.log(table(results));
}
