import { x402Facilitator } from "@x402/core/facilitator";
import { type FacilitatorEvmSigner, toFacilitatorEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/facilitator";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { UptoEvmScheme } from "@x402/evm/upto/facilitator";
import { type Abi, type Address, createWalletClient, type Hex, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { DEVNET_POLLING_MS, devnetChain } from "../../src/chain/index.ts";

/**
 * The official facilitator signer for a devnet, on one viem wallet client extended with public actions, so
 * that its simulations carry `from` = the relayer (the upto proxy refuses any other caller).
 */
export function officialFacilitatorSigner(
  rpcUrl: string,
  chainId: number,
  relayerKey: Hex,
): FacilitatorEvmSigner {
  const wallet = createWalletClient({
    account: privateKeyToAccount(relayerKey),
    chain: devnetChain(rpcUrl, chainId),
    transport: http(rpcUrl),
    pollingInterval: DEVNET_POLLING_MS,
  }).extend(publicActions);
  // The signer interface is typed loosely (abi: unknown[]); viem's strict generics are bridged here once.
  return toFacilitatorEvmSigner(
    {
      address: wallet.account.address,
      getCode: (a) => wallet.getCode(a),
      readContract: (a) => wallet.readContract({ ...a, abi: a.abi as Abi, args: a.args ?? [] }),
      verifyTypedData: (a) => wallet.verifyTypedData(a as Parameters<typeof wallet.verifyTypedData>[0]),
      writeContract: (a) =>
        wallet.writeContract({ ...a, abi: a.abi as Abi, args: a.args ?? [] } as Parameters<
          typeof wallet.writeContract
        >[0]),
      sendTransaction: (a) => wallet.sendTransaction(a),
      waitForTransactionReceipt: (a) => wallet.waitForTransactionReceipt(a),
    },
    { confirmationTimeoutMs: 15_000 },
  );
}

/**
 * The official `x402Facilitator` with `@x402/evm`'s `ExactEvmScheme` (EIP-3009 and Permit2 payloads alike),
 * and with `upto` its `UptoEvmScheme` too, wired to a devnet the way the x402 notes (§5.4) describe: the
 * yardstick our facilitator is compared with, in the same process.
 */
export function officialFacilitator(
  rpcUrl: string,
  chainId: number,
  relayerKey: Hex,
  options: { upto?: boolean } = {},
) {
  const facilitator = new x402Facilitator();
  const signer = officialFacilitatorSigner(rpcUrl, chainId, relayerKey);
  registerExactEvmScheme(facilitator, { signer, networks: [`eip155:${chainId}`] });
  if (options.upto) facilitator.register(`eip155:${chainId}`, new UptoEvmScheme(signer));
  return facilitator;
}

/**
 * The official `x402Facilitator` serving only `batch-settlement` (@x402/evm's `BatchSettlementEvmScheme`),
 * sending from `relayerKey` and advertising and signing as the receiver authorizer `authorizerKey`: give our
 * facilitator the same authorizer and the two answer alike for the same channels. Without `authorizerKey`
 * it has no authorizer of its own: claims and refunds must carry the receiver's signatures.
 */
export function officialBatchFacilitator(
  rpcUrl: string,
  chainId: number,
  relayerKey: Hex,
  authorizerKey?: Hex,
) {
  const signer = officialFacilitatorSigner(rpcUrl, chainId, relayerKey);
  return new x402Facilitator().register(
    `eip155:${chainId}`,
    authorizerKey
      ? new BatchSettlementEvmScheme(signer, privateKeyToAccount(authorizerKey))
      : new BatchSettlementEvmScheme(signer),
  );
}

/**
 * A chain for the official facilitator's verify with no node behind it: the payer is an EOA, the asset is
 * deployed, every simulation succeeds. It measures and checks the verifier's own work, nothing else.
 */
export function officialChainStub(asset: string): FacilitatorEvmSigner {
  const unused = () => Promise.reject(new Error("not used by verify"));
  return {
    getAddresses: () => ["0x0000000000000000000000000000000000000001"],
    getCode: async ({ address }: { address: Address }) =>
      address.toLowerCase() === asset.toLowerCase() ? "0x6080" : "0x",
    readContract: async () => undefined,
    verifyTypedData: unused,
    writeContract: unused,
    sendTransaction: unused,
    waitForTransactionReceipt: unused,
  } as unknown as FacilitatorEvmSigner;
}
