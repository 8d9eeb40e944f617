import { type Address, encodeFunctionData, getAddress, type Hex, type TransactionReceipt } from "viem";
import {
  erc3009DepositCollectorRuntimeCode,
  mockErc20RuntimeCode,
  mockUsdcAbi,
  mockUsdcRuntimeCode,
  multicall3RuntimeCode,
  permit2DepositCollectorRuntimeCode,
  permit2RuntimeCode,
  x402BatchSettlementRuntimeCode,
  x402ExactPermit2ProxyRuntimeCode,
  x402UptoPermit2ProxyRuntimeCode,
} from "./artifacts.generated.ts";
import {
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  MOCK_ERC20_ADDRESS,
  MULTICALL3_ADDRESS,
  NETWORKS,
  type NetworkName,
  PERMIT2_ADDRESS,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  USDC_NAME,
  X402_BATCH_SETTLEMENT_ADDRESS,
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

/**
 * Places MockUSDC at the network's USDC address, named as that network's USDC is, and the periphery at
 * their canonical addresses, and initialises the token's roles.
 */
export async function placeCanonicalContracts(
  client: DevnetClient,
  intervalMining: boolean,
  network: NetworkName,
): Promise<void> {
  const usdc = NETWORKS[network].usdc;
  await Promise.all([
    client.setCode({ address: usdc.address, bytecode: mockUsdcRuntimeCode }),
    // The second token: only on a mock devnet, since on a fork its address could be anyone's. Its `mint`
    // is open, so it needs no initialisation.
    client.setCode({ address: MOCK_ERC20_ADDRESS, bytecode: mockErc20RuntimeCode }),
    placePeriphery(client),
    client.setBalance({ address: MOCK_USDC_ADMIN, value: 10n ** 21n }),
  ]);
  // setCode runs no constructor, so the roles are set by the token's one-shot initializer.
  const data = encodeFunctionData({
    abi: mockUsdcAbi,
    functionName: "initialize",
    args: [MOCK_USDC_ADMIN, MOCK_USDC_ADMIN, MOCK_USDC_ADMIN, MOCK_USDC_ADMIN],
  });
  await sendAsAdmin(client, { to: usdc.address, data, gas: 200_000n }, "MockUSDC.initialize", intervalMining);
  // The mock is born with Base's name; any other network's is given the way FiatToken v2 took its own.
  if (usdc.name !== USDC_NAME) {
    const rename = encodeFunctionData({ abi: mockUsdcAbi, functionName: "initializeV2", args: [usdc.name] });
    await sendAsAdmin(
      client,
      { to: usdc.address, data: rename, gas: 200_000n },
      "MockUSDC.initializeV2",
      intervalMining,
    );
  }
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
  // batch-settlement: the collectors have the batch contract's address (and Permit2's) built in, and the
  // batch contract derives its EIP-712 domain per call, so each works wherever the others are canonical.
  { address: X402_BATCH_SETTLEMENT_ADDRESS, bytecode: x402BatchSettlementRuntimeCode },
  { address: ERC3009_DEPOSIT_COLLECTOR_ADDRESS, bytecode: erc3009DepositCollectorRuntimeCode },
  { address: PERMIT2_DEPOSIT_COLLECTOR_ADDRESS, bytecode: permit2DepositCollectorRuntimeCode },
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

/**
 * A fork (or a chain we attach to) must carry the network's USDC, under the EIP-712 name and version x402
 * clients sign for; otherwise nothing they sign would settle.
 */
export async function assertCanonicalUsdc(
  client: DevnetClient,
  network: NetworkName,
  hint = `Fork ${NETWORKS[network].label} (chain ${NETWORKS[network].chainId}), or run without --fork-url to get the mock USDC.`,
): Promise<void> {
  const { label, usdc } = NETWORKS[network];
  const code = await client.getCode({ address: usdc.address });
  if (!code || code === "0x") {
    throw new ForkMissingUsdcError(
      `The chain has no contract at ${label}'s USDC address ${usdc.address}.`,
      hint,
    );
  }
  const read = (functionName: "name" | "version") =>
    client.readContract({ address: usdc.address, abi: mockUsdcAbi, functionName }).catch(() => undefined);
  const [name, version] = await Promise.all([read("name"), read("version")]);
  if (name !== usdc.name || version !== usdc.version) {
    throw new ForkMissingUsdcError(
      `The contract at ${usdc.address} is not ${label}'s USDC (name ${JSON.stringify(name)}, version ${JSON.stringify(version)}; expected "${usdc.name}", "${usdc.version}").`,
      hint,
    );
  }
}
