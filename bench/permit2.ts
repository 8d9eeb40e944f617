/**
 * The Permit2 paths, `exact` by Permit2 and `upto`, against the official facilitator (`x402Facilitator` with
 * `@x402/evm`'s `ExactEvmScheme` and `UptoEvmScheme`), each on a fresh devnet of its own (anvil slows as
 * its state grows), in the same process: verifications one at a time with simulation on, and settlements
 * under the `instant` profile, ours with concurrent requests, the official one at a time (it takes each
 * nonce from the node, so concurrent settles from its one key collide). Every payment carries a fresh
 * Permit2 nonce; only `success: true` answers that are not duplicates count.
 */
import type { Hex } from "viem";
import { approvePermit2, USDC_ADDRESS, USDC_NAME, USDC_VERSION } from "../src/chain/index.ts";
import { createPermit2Schemes, type SchemeRequest } from "../src/facilitator/index.ts";
import {
  type PaymentRequirements,
  PERMIT2_SPENDER,
  type Permit2Kind,
  permit2Digest,
  randomNonce,
  signDigest,
} from "../src/protocol/index.ts";
import { officialFacilitator } from "../test/support/official-facilitator.ts";
import { type BenchDevnet, benchDevnet } from "./lib/devnet.ts";
import { measure } from "./lib/measure.ts";
import { benchArgs, isMain, log, type Results, round, sideBySide, table } from "./lib/report.ts";

export type Permit2BenchOptions = { quick: boolean };

const PAYERS = 50;
/** What an `upto` payment is signed for, and what its settle charges of it. */
const MAXIMUM = 2_000n;
const METERED = "1200";

type Facilitating = {
  verify(request: SchemeRequest): Promise<{ isValid: boolean; invalidReason?: string }>;
  settle(request: SchemeRequest): Promise<{ success: boolean; errorReason?: string; extra?: unknown }>;
  close(): Promise<void>;
};

function requirementsFor(kind: Permit2Kind, bench: BenchDevnet, facilitator: Hex): PaymentRequirements {
  return {
    scheme: kind,
    network: `eip155:${bench.devnet.chainId}`,
    asset: USDC_ADDRESS,
    amount: String(kind === "upto" ? MAXIMUM : 1_000n),
    payTo: bench.payee.address,
    maxTimeoutSeconds: 300,
    extra: {
      name: USDC_NAME,
      version: USDC_VERSION,
      assetTransferMethod: "permit2",
      ...(kind === "upto" ? { facilitatorAddress: facilitator } : {}),
    },
  };
}

/** `count` Permit2 payments with fresh nonces, round-robin over the payers, signed natively. */
function signRequests(
  kind: Permit2Kind,
  bench: BenchDevnet,
  requirements: PaymentRequirements,
  count: number,
): SchemeRequest[] {
  const deadline = String(Math.floor(Date.now() / 1000) + 3600);
  return Array.from({ length: count }, (_, i) => {
    const payer = bench.payers[i % bench.payers.length];
    if (!payer) throw new Error("no payers");
    const authorization = {
      from: payer.address,
      permitted: { token: USDC_ADDRESS, amount: requirements.amount },
      spender: PERMIT2_SPENDER[kind],
      nonce: BigInt(randomNonce()).toString(),
      deadline,
      witness: {
        to: bench.payee.address,
        ...(kind === "upto" ? { facilitator: requirements.extra?.facilitatorAddress as Hex } : {}),
        validAfter: "0",
      },
    };
    const signature = signDigest(payer.privateKey, permit2Digest(kind, bench.devnet.chainId, authorization));
    return {
      x402Version: 2,
      paymentPayload: {
        x402Version: 2,
        accepted: requirements,
        payload: { signature, permit2Authorization: authorization },
      },
      paymentRequirements: requirements,
    };
  });
}

/** Ours, or the official facilitator, with `relayer` as its one key (upto's witness names it). */
function facilitating(impl: "ours" | "official", kind: Permit2Kind, bench: BenchDevnet): Facilitating {
  const relayer = bench.relayers[0];
  if (!relayer) throw new Error("no relayer");
  if (impl === "ours") {
    const schemes = createPermit2Schemes({
      rpcUrl: bench.devnet.rpcUrl,
      chainId: bench.devnet.chainId,
      relayerKeys: bench.relayers.map((r) => r.privateKey),
    });
    const scheme = schemes[kind];
    return {
      verify: (r) => scheme.verify(r),
      settle: (r) => scheme.settle(r),
      close: async () => {
        await schemes.exact.close();
        await schemes.upto.close();
      },
    };
  }
  const official = officialFacilitator(bench.devnet.rpcUrl, bench.devnet.chainId, relayer.privateKey, {
    upto: true,
  });
  return {
    verify: (r) => official.verify(r.paymentPayload, r.paymentRequirements),
    settle: (r) => official.settle(r.paymentPayload, r.paymentRequirements),
    close: async () => {},
  };
}

async function withBench<T>(relayers: number, run: (bench: BenchDevnet) => Promise<T>): Promise<T> {
  const bench = await benchDevnet({ payers: PAYERS, relayers, devnet: { profile: "instant" } });
  try {
    await approvePermit2(bench.devnet.client, bench.payers, USDC_ADDRESS, false);
    return await run(bench);
  } finally {
    await bench.stop();
  }
}

/** Verifications per second, one at a time, simulation on. */
async function verifyRate(impl: "ours" | "official", kind: Permit2Kind, time: number): Promise<number> {
  return withBench(1, async (bench) => {
    const requests = signRequests(
      kind,
      bench,
      requirementsFor(kind, bench, bench.relayers[0]?.address as Hex),
      2_000,
    );
    const facilitator = facilitating(impl, kind, bench);
    let i = 0;
    try {
      const rates = await measure(time, {
        [impl]: async () => {
          const verdict = await facilitator.verify(requests[i++ % requests.length] as SchemeRequest);
          if (!verdict.isValid) throw new Error(`${impl} ${kind} verify refused: ${verdict.invalidReason}`);
        },
      });
      return rates[impl] ?? 0;
    } finally {
      await facilitator.close();
    }
  });
}

/** Settlements per second over `seconds`, `concurrency` at a time; upto charges less than the maximum. */
async function settleRate(
  impl: "ours" | "official",
  kind: Permit2Kind,
  seconds: number,
  concurrency: number,
  relayers: number,
): Promise<{ rate: number; failed: number }> {
  return withBench(relayers, async (bench) => {
    const requirements = requirementsFor(kind, bench, bench.relayers[0]?.address as Hex);
    const requests = signRequests(kind, bench, requirements, 400 * seconds + 100);
    const facilitator = facilitating(impl, kind, bench);
    let next = 0;
    let settled = 0;
    let failed = 0;
    const started = performance.now();
    const until = started + seconds * 1000;
    const worker = async () => {
      while (performance.now() < until) {
        const request = requests[next++];
        if (!request) return;
        const actual =
          kind === "upto"
            ? { ...request, paymentRequirements: { ...request.paymentRequirements, amount: METERED } }
            : request;
        const outcome = await facilitator.settle(actual);
        if (outcome.success && !outcome.extra) settled += 1;
        else failed += 1;
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, worker));
      const elapsed = (performance.now() - started) / 1000;
      log(`settle ${impl} ${kind}: ${settled} settled, ${failed} failed in ${round(elapsed)} s`);
      return { rate: settled / elapsed, failed };
    } finally {
      await facilitator.close();
    }
  });
}

export async function benchPermit2(options: Permit2BenchOptions): Promise<Results> {
  const time = options.quick ? 1_000 : 4_000;
  const seconds = options.quick ? 2 : 8;
  const results: Results = {};
  for (const kind of ["exact", "upto"] as const) {
    const key = kind === "exact" ? "permit2" : "upto";
    const ours = await verifyRate("ours", kind, time);
    const official = await verifyRate("official", kind, time);
    log(`verify ${kind} by Permit2: ours ${round(ours)}/s, official ${round(official)}/s`);
    results[`${key}/verify-chain`] = {
      ...sideBySide(ours, official, "ops/s"),
      notes:
        "one verification at a time against anvil, simulation on; official = x402Facilitator + @x402/evm",
    };
    // upto settles only from the key its witness names: one key, whatever the pool.
    const keys = kind === "exact" ? 2 : 1;
    const mine = await settleRate("ours", kind, seconds, 64, keys);
    const theirs = await settleRate("official", kind, seconds, 1, 1);
    results[`${key}/settle-instant`] = {
      ...sideBySide(mine.rate, theirs.rate, "settle/s"),
      notes: `instant profile; ours: ${keys} key(s), 64 at a time, ${mine.failed} failed; official: 1 key, one at a time, ${theirs.failed} failed${kind === "upto" ? `; each settles ${METERED} of a signed ${MAXIMUM}` : ""}`,
    };
  }
  return results;
}

if (isMain(import.meta.url)) {
  const results = await benchPermit2(benchArgs());
  console.log(table(results));
}
