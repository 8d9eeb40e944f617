import type { FastifyInstance } from "fastify";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { buildFacilitatorApp, type FacilitatorScheme, type SchemeRequest } from "../src/facilitator/index.ts";
import type { Network, SettleResponse, SupportedKind, VerifyResponse } from "../src/protocol/index.ts";
import { officialFacilitator } from "../test/support/official-facilitator.ts";

/**
 * The official `x402Facilitator` (with `@x402/evm`'s `ExactEvmScheme`, and with `upto` its `UptoEvmScheme`,
 * one relayer key) behind the very fastify app our facilitator uses: same routes, body schema, error
 * handling and metrics, so an HTTP benchmark compares the two verifiers and settlers and nothing else.
 * `upto`'s kind names the relayer as `facilitatorAddress`, as the official facilitator's does.
 */
export class OfficialScheme implements FacilitatorScheme {
  readonly kinds: readonly SupportedKind[];
  readonly signers: Readonly<Record<string, readonly string[]>>;

  /** `facilitator` is an `officialFacilitator(…)`, shared by the schemes of one app. */
  constructor(
    readonly scheme: "exact" | "upto",
    private readonly facilitator: ReturnType<typeof officialFacilitator>,
    chainId: number,
    relayer: Hex,
  ) {
    const network = `eip155:${chainId}` as Network;
    this.kinds = [
      {
        x402Version: 2,
        scheme,
        network,
        ...(scheme === "upto" ? { extra: { facilitatorAddress: relayer } } : {}),
      },
    ];
    this.signers = { "eip155:*": [relayer] };
  }

  verify({ paymentPayload, paymentRequirements }: SchemeRequest): Promise<VerifyResponse> {
    return this.facilitator.verify(paymentPayload, paymentRequirements);
  }

  settle({ paymentPayload, paymentRequirements }: SchemeRequest): Promise<SettleResponse> {
    return this.facilitator.settle(paymentPayload, paymentRequirements);
  }
}

/** The official exact (and with `upto`, upto) schemes on one devnet, sharing one facilitator and key. */
export function officialSchemes(
  rpcUrl: string,
  chainId: number,
  relayerKey: Hex,
  options: { upto?: boolean } = {},
): OfficialScheme[] {
  const facilitator = officialFacilitator(rpcUrl, chainId, relayerKey, options);
  const relayer = privateKeyToAccount(relayerKey).address;
  return [
    new OfficialScheme("exact", facilitator, chainId, relayer),
    ...(options.upto ? [new OfficialScheme("upto", facilitator, chainId, relayer)] : []),
  ];
}

/** The official facilitator as an HTTP server, listening on a free port of 127.0.0.1. */
export async function startOfficialFacilitator(options: {
  rpcUrl: string;
  chainId: number;
  relayerKey: Hex;
  /** Also `upto` (exact serves EIP-3009 and Permit2 payloads alike). */
  upto?: boolean;
}): Promise<{ url: string; app: FastifyInstance; stop(): Promise<void> }> {
  const { app } = buildFacilitatorApp({
    schemes: officialSchemes(options.rpcUrl, options.chainId, options.relayerKey, { upto: options.upto }),
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, app, stop: () => app.close() };
}
