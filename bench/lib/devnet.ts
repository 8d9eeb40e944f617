import { readdirSync, readFileSync } from "node:fs";
import type { Hex } from "viem";
import {
  DEFAULT_MNEMONIC,
  type Devnet,
  type DevnetAccount,
  type DevnetOptions,
  deriveAccounts,
  HD_RANGES,
  startDevnet,
} from "../../src/chain/index.ts";
import {
  addressFromPrivateKey,
  type PaymentPayload,
  type PaymentRequirements,
} from "../../src/protocol/index.ts";
import { signPayment, usdcRequirements } from "../../test/support/payments.ts";

export type BenchDevnet = {
  devnet: Devnet;
  payers: readonly DevnetAccount[];
  relayers: readonly DevnetAccount[];
  payee: DevnetAccount;
  /** anvil's process id, to read its CPU time. */
  anvilPid: number | undefined;
  setupSeconds: number;
  stop(): Promise<void>;
};

/** A devnet with `payers` funded wallets, `relayers` gas-funded relayer keys and a payee; timed. */
export async function benchDevnet(options: {
  payers: number;
  relayers: number;
  devnet?: DevnetOptions;
}): Promise<BenchDevnet> {
  const started = performance.now();
  const devnet = await startDevnet({ accounts: options.payers, ...options.devnet });
  const setupSeconds = (performance.now() - started) / 1000;
  const relayers = deriveAccounts(DEFAULT_MNEMONIC, options.relayers, HD_RANGES.started.relayers);
  const [payee] = deriveAccounts(DEFAULT_MNEMONIC, 1, HD_RANGES.started.payees);
  if (!payee) throw new Error("payee derivation failed");
  await devnet.fund(
    relayers.map((r) => r.address),
    { usdc: 0n },
  );
  return {
    devnet,
    payers: devnet.accounts,
    relayers,
    payee,
    anvilPid: findAnvilPid(new URL(devnet.rpcUrl).port),
    setupSeconds,
    stop: () => devnet.stop(),
  };
}

/** The anvil child listening on `port`, found in /proc (Linux only; undefined elsewhere). */
function findAnvilPid(port: string): number | undefined {
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      } catch {
        continue;
      }
      const args = cmdline.split("\0");
      if (args[0]?.endsWith("anvil") && args[args.indexOf("--port") + 1] === port) return Number(entry);
    }
  } catch {
    // not Linux
  }
  return undefined;
}

export type SignedPayment = { payload: PaymentPayload; requirements: PaymentRequirements };

/**
 * `count` distinct payments (fresh nonces), round-robin over `payers`, paying `payTo` `amount` each,
 * signed as the official client signs them (validAfter 0, validBefore now + 300 s).
 */
export function signPayments(
  payers: readonly { privateKey: Hex; address?: Hex }[],
  payTo: Hex,
  count: number,
  amount = 1_000n,
): SignedPayment[] {
  const requirements = usdcRequirements(payTo, amount);
  const from = payers.map((p) => p.address ?? addressFromPrivateKey(p.privateKey));
  return Array.from({ length: count }, (_, i) => {
    const k = i % payers.length;
    const payer = payers[k];
    if (!payer) throw new Error("no payers");
    const payload = signPayment(payer.privateKey, requirements, { authorization: { from: from[k] } });
    return { payload, requirements };
  });
}

/** The `/verify` or `/settle` request body of a payment. */
export function facilitatorBody({ payload, requirements }: SignedPayment): string {
  return JSON.stringify({ x402Version: 2, paymentPayload: payload, paymentRequirements: requirements });
}

const median = (samples: number[]) => samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)] ?? 0;

/** Median milliseconds to mine one empty block (`evm_mine`). */
export async function blockMs(devnet: Devnet, samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const began = performance.now();
    await devnet.client.request({ method: "evm_mine", params: undefined });
    times.push(performance.now() - began);
  }
  return median(times);
}
