import { createHash, randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { type Address, bytesToHex, encodeFunctionData, type Hex, parseSignature } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { mockUsdcAbi, multicall3Abi } from "../../chain/artifacts.generated.ts";
import { DEFAULT_MNEMONIC, MULTICALL3_ADDRESS } from "../../chain/base-profile.ts";
import { createDevnetClient } from "../../chain/client.ts";
import { approvePermit2 } from "../../chain/funding.ts";
import { type DevnetAccount, deriveAccounts } from "../../chain/wallets.ts";
import { signTransferAuthorization } from "../../protocol/signature.ts";
import { ARTILLERY_HD, type ArtilleryJob, FUNDER_KEY_ENV, MNEMONIC_ENV } from "./job.ts";

/**
 * The slot a worker thread pays from, drawn from its identity: the run, the cloud worker (`WORKER_ID`,
 * one per Fargate task or Lambda) and the thread within it (`LOCAL_WORKER_ID`). Two threads that draw one
 * slot would share wallets; the report counts the threads per slot and fails such a run.
 */
export function slotOf(runId: string, env: NodeJS.ProcessEnv = process.env): number {
  const identity = `${runId}:${env.WORKER_ID ?? ""}:${env.LOCAL_WORKER_ID ?? ""}`;
  return createHash("sha256").update(identity).digest().readUInt32BE(0) % ARTILLERY_HD.slots;
}

/** The mnemonic the agents' wallets derive from: the public test one unless the environment names one. */
export const agentMnemonic = (env: NodeJS.ProcessEnv = process.env) => env[MNEMONIC_ENV] ?? DEFAULT_MNEMONIC;

/** Wallets `0 … count-1` of a slot. */
export function slotWallets(slot: number, count: number, mnemonic: string): DevnetAccount[] {
  if (count > ARTILLERY_HD.slotSize)
    throw new RangeError(`a worker holds at most ${ARTILLERY_HD.slotSize} wallets, asked for ${count}`);
  return deriveAccounts(mnemonic, count, ARTILLERY_HD.agents + slot * ARTILLERY_HD.slotSize);
}

/** The funding transfers of one Multicall3 transaction: ~60,000 gas each, well inside a block. */
const PER_TRANSACTION = 200;
/** Tries a funding transaction gets when other workers' transactions from the same funder take its nonce. */
const ATTEMPTS = 10;

/**
 * Funds a worker's wallets from the funder key in the environment: USDC by EIP-3009 transfers the funder
 * signs (no nonce of its own to race on), ETH for the wallets' own transactions, all through Multicall3 in
 * a few transactions the funder sends. Workers share the funder, so a transaction whose nonce another
 * worker took is sent again. Then each wallet approves Permit2 when the scenario pays by it
 * (`approvePermit2`, the harness's own).
 */
export async function fundWorkerWallets(
  job: ArtilleryJob,
  wallets: readonly DevnetAccount[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const key = env[FUNDER_KEY_ENV] as Hex | undefined;
  if (!key)
    throw new Error(`${FUNDER_KEY_ENV} is not set: the workers need a key to fund their wallets from`);
  const funder = privateKeyToAccount(key);
  const client = createDevnetClient(job.chain.rpcUrl, job.chain.chainId);
  const usdc = BigInt(job.spec.usdc);
  const eth = BigInt(job.eth);
  const domain = { ...job.chain.usdc, chainId: job.chain.chainId, verifyingContract: job.chain.usdc.address };
  const validBefore = String(Math.floor(Date.now() / 1000) + 3_600);

  for (let start = 0; start < wallets.length; start += PER_TRANSACTION) {
    const calls = wallets.slice(start, start + PER_TRANSACTION).flatMap(({ address }) => {
      const authorization = {
        from: funder.address,
        to: address,
        value: usdc.toString(),
        validAfter: "0",
        validBefore,
        nonce: bytesToHex(randomBytes(32)),
      };
      const { v, r, s } = parseSignature(signTransferAuthorization(key, domain, authorization));
      const transfer = {
        target: job.chain.usdc.address,
        allowFailure: false,
        value: 0n,
        callData: encodeFunctionData({
          abi: mockUsdcAbi,
          functionName: "transferWithAuthorization",
          args: [
            funder.address,
            address,
            usdc,
            0n,
            BigInt(validBefore),
            authorization.nonce,
            Number(v),
            r,
            s,
          ],
        }),
      };
      return eth > 0n
        ? [transfer, { target: address, allowFailure: false, value: eth, callData: "0x" as Hex }]
        : [transfer];
    });
    const data = encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3Value", args: [calls] });
    const value = eth * BigInt(calls.length / (eth > 0n ? 2 : 1));
    await sendRetried(async () => {
      const hash = await client.sendTransaction({
        account: funder,
        chain: null,
        to: MULTICALL3_ADDRESS,
        data,
        value,
      });
      const receipt = await client.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`funding transaction ${hash} reverted`);
    });
  }
  // Each wallet approves Permit2 itself, as the harness's own agents do; blocks come from the chain.
  if (job.spec.permit2Allowance) await approvePermit2(client, wallets, job.chain.usdc.address, false);
}

/** Another sender's transaction took the nonce, or one is already pending with it: send again. */
const NONCE_CLASH = /nonce|already known|underpriced|replacement/i;

async function sendRetried(send: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await send();
      return;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (attempt >= ATTEMPTS || !NONCE_CLASH.test(message)) throw error;
      await delay(20 * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}

/** The funder's address for a key (what a run funds before the workers start). */
export const funderAddress = (key: Hex): Address => privateKeyToAccount(key).address;
