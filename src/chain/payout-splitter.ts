import { type Address, encodeDeployData } from "viem";
import { payoutSplitterAbi, payoutSplitterBytecode } from "./artifacts.generated.ts";
import type { DevnetClient } from "./client.ts";
import { MOCK_USDC_ADMIN, sendAsAdmin } from "./placement.ts";

export const TOTAL_SHARES = 10_000n;

export type Split = { payees: readonly Address[]; shares: readonly number[] };

/**
 * Deploys a `PayoutSplitter` (payees by basis points, fixed at construction). Deployed from the keyless
 * admin through an unsigned transaction, like every devnet setup step; under interval mining a block is
 * mined on the spot.
 */
export async function deployPayoutSplitter(
  client: DevnetClient,
  split: Split,
  intervalMining = false,
): Promise<Address> {
  const data = encodeDeployData({
    abi: payoutSplitterAbi,
    bytecode: payoutSplitterBytecode,
    args: [[...split.payees], [...split.shares]],
  });
  await client.setBalance({ address: MOCK_USDC_ADMIN, value: 10n ** 21n });
  const what = `PayoutSplitter deployment (payees ${split.payees.join(", ")}, shares ${split.shares.join(", ")})`;
  const receipt = await sendAsAdmin(client, { data, gas: 3_000_000n }, what, intervalMining);
  if (!receipt.contractAddress) throw new Error(`${what} created no contract`);
  return receipt.contractAddress;
}

/**
 * The splitter's rounding rule, in TypeScript: payee i gets floor(amount × share_i / 10,000), and the
 * remainder (less than the number of payees) goes to the first payee, so every unit is paid out.
 */
export function splitPayout(amount: bigint, shares: readonly number[]): bigint[] {
  const parts = shares.map((share) => (amount * BigInt(share)) / TOTAL_SHARES);
  const remainder = amount - parts.reduce((a, b) => a + b, 0n);
  if (parts.length > 0) parts[0] = (parts[0] ?? 0n) + remainder;
  return parts;
}

/** The split a `PayoutSplitter` at `address` pays out, or undefined when the address is not one. */
export async function readPayoutSplitter(client: DevnetClient, address: Address): Promise<Split | undefined> {
  try {
    const [payees, shares] = await Promise.all([
      client.readContract({ address, abi: payoutSplitterAbi, functionName: "payees" }),
      client.readContract({ address, abi: payoutSplitterAbi, functionName: "shares" }),
    ]);
    return { payees, shares: shares.map(Number) };
  } catch {
    return undefined;
  }
}
