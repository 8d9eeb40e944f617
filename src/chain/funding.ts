import { type Address, encodeFunctionData, erc20Abi, type Hash, type Hex, maxUint256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { mockUsdcAbi, multicall3Abi } from "./artifacts.generated.ts";
import { MULTICALL3_ADDRESS, PERMIT2_ADDRESS } from "./base-profile.ts";
import type { DevnetClient } from "./client.ts";

export type FundingParameters = {
  accounts: readonly Address[];
  /** Wei each account holds afterwards (set, not added). */
  eth: bigint;
  /** USDC base units minted to each account (added to what it holds). */
  usdc: bigint;
  /** The USDC contract: the devnet's network's (`Devnet.usdc.address`). */
  token: Address;
  /** Whether blocks are mined by interval, so sent transactions must be mined on demand. */
  intervalMining: boolean;
};

/** Gas one `mint` costs inside a batch, with room for real FiatToken's proxy and blacklist reads. */
const GAS_PER_MINT = 60_000n;
const ROLE_ETH = 10n ** 21n;

/**
 * Funds accounts with ETH and USDC the way it works on real USDC too: the master minter (impersonated)
 * (sending without its key) makes Multicall3 a minter for exactly the total, Multicall3 mints to every account in a few large batches,
 * and the master minter removes it again. Only the state changes are special cased: ETH is set directly.
 */
export async function fundAccounts(client: DevnetClient, p: FundingParameters): Promise<void> {
  if (p.accounts.length === 0) return;
  await Promise.all(p.accounts.map((address) => client.setBalance({ address, value: p.eth })));
  if (p.usdc === 0n) return;

  const masterMinter = await client.readContract({
    address: p.token,
    abi: mockUsdcAbi,
    functionName: "masterMinter",
  });
  await client.setBalance({ address: masterMinter, value: ROLE_ETH });
  const block = await client.getBlock();
  const perBatch = Number((block.gasLimit * 8n) / 10n / GAS_PER_MINT);
  // Sent as the master minter without its key, like impersonation; gas is given because each transaction
  // depends on the previous one, which an estimate would not see under interval mining.
  const send = (to: Address, data: Hex, gas: bigint) =>
    client.sendUnsignedTransaction({ from: masterMinter, to, data, gas });

  const hashes: Hash[] = [];
  const total = p.usdc * BigInt(p.accounts.length);
  const configure = encodeFunctionData({
    abi: mockUsdcAbi,
    functionName: "configureMinter",
    args: [MULTICALL3_ADDRESS, total],
  });
  hashes.push(await send(p.token, configure, 200_000n));
  for (let start = 0; start < p.accounts.length; start += perBatch) {
    const batch = p.accounts.slice(start, start + perBatch);
    const calls = batch.map((to) => ({
      target: p.token,
      allowFailure: false,
      callData: encodeFunctionData({ abi: mockUsdcAbi, functionName: "mint", args: [to, p.usdc] }),
    }));
    const data = encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3", args: [calls] });
    hashes.push(await send(MULTICALL3_ADDRESS, data, 100_000n + GAS_PER_MINT * BigInt(batch.length)));
  }
  const remove = encodeFunctionData({
    abi: mockUsdcAbi,
    functionName: "removeMinter",
    args: [MULTICALL3_ADDRESS],
  });
  hashes.push(await send(p.token, remove, 200_000n));
  if (p.intervalMining) await mineUntilIncluded(client, hashes);
  for (const hash of hashes) {
    const receipt = await client.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`USDC funding transaction ${hash} reverted`);
  }
}

/** Under interval mining, mines blocks now instead of waiting out the block time during setup. */
async function mineUntilIncluded(client: DevnetClient, hashes: readonly Hash[]): Promise<void> {
  const last = hashes.at(-1);
  if (!last) return;
  for (let i = 0; i <= hashes.length; i++) {
    await client.mine({ blocks: 1 });
    const receipt = await client.getTransactionReceipt({ hash: last }).catch(() => undefined);
    if (receipt) return;
  }
  throw new Error("funding transactions were not mined");
}

/**
 * Each account's `approve(Permit2, max)` of `token`, signed with its own key as a wallet would: what a
 * payer needs before any Permit2 payment (`exact` by Permit2, `upto`) can settle. Sent all at once, one per
 * account; `mineOnDemand`: blocks do not come per transaction, so one is mined for them.
 */
export async function approvePermit2(
  client: DevnetClient,
  accounts: readonly { privateKey: Hex }[],
  token: Address,
  mineOnDemand: boolean,
): Promise<void> {
  const hashes = await Promise.all(
    accounts.map(({ privateKey }) =>
      client.writeContract({
        account: privateKeyToAccount(privateKey),
        chain: null,
        address: token,
        abi: erc20Abi,
        functionName: "approve",
        args: [PERMIT2_ADDRESS, maxUint256],
      }),
    ),
  );
  if (mineOnDemand && hashes.length > 0) await client.mine({ blocks: 1 });
  const receipts = await Promise.all(hashes.map((hash) => client.waitForTransactionReceipt({ hash })));
  const failed = receipts.filter((r) => r.status !== "success").length;
  if (failed > 0) throw new Error(`${failed} of ${receipts.length} Permit2 approvals reverted`);
}
