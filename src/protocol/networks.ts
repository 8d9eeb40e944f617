import type { Network, PaymentRequirements } from "@x402/core/types";
import type { PaymentRequirementsV1 } from "@x402/core/types/v1";
import { X402Error } from "./errors.ts";

/**
 * v1 network names the devnet answers to. @x402/evm/v1 exports the full map (`EVM_NETWORK_CHAIN_ID_MAP`, 23
 * names), but @x402/evm is a devDependency, so this is the Base subset; the tests check it against that map.
 */
const V1_NETWORK_CHAIN_IDS: Readonly<Record<string, number>> = {
  base: 8453,
  "base-sepolia": 84532,
};

const EIP155_NETWORK = /^eip155:(\d+)$/;

/** Chain id of an `eip155:<id>` CAIP-2 network, parsed like @x402/evm's `getEvmChainId`. */
export function chainIdFromNetwork(network: string): number {
  const match = EIP155_NETWORK.exec(network);
  const chainId = match ? Number(match[1]) : Number.NaN;
  if (!Number.isSafeInteger(chainId)) {
    throw new X402Error("invalid_network", `Not an eip155:<chain id> network: ${JSON.stringify(network)}`, {
      details: { network },
    });
  }
  return chainId;
}

/** CAIP-2 id for a v1 network name (`base` → `eip155:8453`). */
export function networkFromV1(name: string): Network {
  const chainId = Object.hasOwn(V1_NETWORK_CHAIN_IDS, name) ? V1_NETWORK_CHAIN_IDS[name] : undefined;
  if (chainId === undefined) {
    throw new X402Error("invalid_network", `Unknown v1 network name: ${JSON.stringify(name)}`, {
      details: { network: name },
    });
  }
  return `eip155:${chainId}`;
}

/**
 * v1 requirements in v2's shape (`maxAmountRequired` becomes `amount`), on `network`: the caller decides
 * what a v1 name becomes (the facilitator refuses unknown names, an agent leaves them to its policy).
 */
export function requirementsFromV1(r: PaymentRequirementsV1, network: Network): PaymentRequirements {
  return {
    scheme: r.scheme,
    network,
    asset: r.asset,
    amount: r.maxAmountRequired,
    payTo: r.payTo,
    maxTimeoutSeconds: r.maxTimeoutSeconds,
    extra: r.extra ?? {},
  };
}

/** v1 network name for a CAIP-2 id (`eip155:8453` → `base`), or undefined when v1 has no name for it. */
export function v1NetworkName(network: string): string | undefined {
  for (const [name, chainId] of Object.entries(V1_NETWORK_CHAIN_IDS)) {
    if (network === `eip155:${chainId}`) return name;
  }
  return undefined;
}
