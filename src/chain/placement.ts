import { type Address, encodeFunctionData, getAddress, type Hex, type TransactionReceipt } from "viem";
import {
  mockUsdcAbi,
  mockUsdcRuntimeCode,
  multicall3RuntimeCode,
  permit2RuntimeCode,
  x402ExactPermit2ProxyRuntimeCode,
  x402UptoPermit2ProxyRuntimeCode,
} from "./artifacts.generated.ts";
import {
  MULTICALL3_ADDRESS,
  PERMIT2_ADDRESS,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
} from "./base-profile.ts";
import type { DevnetClient } from "./client.ts";
import { ForkMissingUsdcError } from "./errors.ts";

/**
 * The mock USDC's owner, master minter, pauser and blacklister. It has no key: like real USDC's roles in a
 * fork, it acts through anvil's unsigned transactions, so tests and fault injection use one path on both.
 */
export const MOCK_USDC_ADMIN: Address = getAddress("0x00000000000000000000000000000000000ad111");

/** Places MockUSDC and the periphery at their canonical Base addresses and initialises the token's roles. */
export async function placeCanonicalContracts(client: DevnetClient, intervalMining: boolean): Promise<void> {
  await Promise.all([
    client.setCode({ address: USDC_ADDRESS, bytecode: mockUsdcRuntimeCode }),
    placePeriphery(client),
    client.setBalance({ address: MOCK_USDC_ADMIN, value: 10n ** 21n }),
  ]);
  // setCode runs no constructor, so the roles are set by the token's one-shot initializer.
  const data = encodeFunctionData({
    abi: mockUsdcAbi,
    functionName: "initialize",
    args: [MOCK_USDC_ADMIN, MOCK_USDC_ADMIN, MOCK_USDC_ADMIN, MOCK_USDC_ADMIN],
  });
  await sendAsAdmin(client, { to: USDC_ADDRESS, data, gas: 200_000n }, "MockUSDC.initialize", intervalMining);
}

/**
 * Sends a transaction as {@link MOCK_USDC_ADMIN}, without its key, and returns its receipt once it
 * succeeded; `what` names it in the error otherwise. `mineOnDemand`: blocks do not come per transaction,
 * so one is mined for it rather than waited for.
 */
export async function sendAsAdmin(
  client: DevnetClient,
  tx: { to?: Address; data: Hex; gas?: bigint },
  what: string,
  mineOnDemand = false,
): Promise<TransactionReceipt> {
  const hash = await client.sendUnsignedTransaction({ from: MOCK_USDC_ADMIN, ...tx });
  if (mineOnDemand) await client.mine({ blocks: 1 });
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${what} reverted`);
  return receipt;
}

/**
 * What x402 clients and facilitators expect beside the token, each at its address on every chain. Placed
 * with `anvil_setCode`, so no constructor runs: each keeps no state it would have set (Permit2 computes its
 * domain separator per call; the proxy has Permit2's address built in).
 */
const PERIPHERY = [
  { address: MULTICALL3_ADDRESS, bytecode: multicall3RuntimeCode },
  { address: PERMIT2_ADDRESS, bytecode: permit2RuntimeCode },
  { address: X402_EXACT_PERMIT2_PROXY_ADDRESS, bytecode: x402ExactPermit2ProxyRuntimeCode },
  // Base's own is in doubt (x402's README lists none on Base mainnet, a later PR says it is live): placed
  // only where the chain has no code there.
  { address: X402_UPTO_PERMIT2_PROXY_ADDRESS, bytecode: x402UptoPermit2ProxyRuntimeCode },
] as const;

/**
 * Places our periphery contracts wherever the chain has none at the canonical address; a fork of Base keeps
 * its own, which are the real ones.
 */
export async function placePeriphery(client: DevnetClient): Promise<void> {
  await Promise.all(
    PERIPHERY.map(async ({ address, bytecode }) => {
      const code = await client.getCode({ address });
      if (!code || code === "0x") await client.setCode({ address, bytecode });
    }),
  );
}

/** A fork (or a chain we attach to) must carry Base's USDC; otherwise nothing an x402 client signs would settle. */
export async function assertCanonicalUsdc(
  client: DevnetClient,
  hint = "Fork Base mainnet (chain 8453), or run without --fork-url to get the mock USDC.",
): Promise<void> {
  const code = await client.getCode({ address: USDC_ADDRESS });
  if (!code || code === "0x") {
    throw new ForkMissingUsdcError(`The chain has no contract at Base's USDC address ${USDC_ADDRESS}.`, hint);
  }
  const read = (functionName: "name" | "version") =>
    client.readContract({ address: USDC_ADDRESS, abi: mockUsdcAbi, functionName }).catch(() => undefined);
  const [name, version] = await Promise.all([read("name"), read("version")]);
  if (name !== USDC_NAME || version !== USDC_VERSION) {
    throw new ForkMissingUsdcError(
      `The contract at ${USDC_ADDRESS} is not Base's USDC (name ${JSON.stringify(name)}, version ${JSON.stringify(version)}; expected "${USDC_NAME}", "${USDC_VERSION}").`,
      hint,
    );
  }
}
