import type { FastifyInstance } from "fastify";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { buildFacilitatorApp, type FacilitatorScheme, type SchemeRequest } from "../src/facilitator/index.ts";
import type { Network, SettleResponse, SupportedKind, VerifyResponse } from "../src/protocol/index.ts";
import { officialBatchFacilitator, officialFacilitator } from "../test/support/official-facilitator.ts";

/**
 * The official `x402Facilitator` (with `@x402/evm`'s `ExactEvmScheme`, and with `upto` its `UptoEvmScheme`,
 * one relayer key) behind the very fastify app our facilitator uses: same routes, body schema, error
 * handling and metrics, so an HTTP benchmark compares the two verifiers and settlers and nothing else.
 * `upto`'s kind names the relayer as `facilitatorAddress`, as the official facilitator's does, and
 * `batch-settlement`'s names the receiver authorizer, as the official facilitator built with one does.
 */
export class OfficialScheme implements FacilitatorScheme {
  readonly kinds: readonly SupportedKind[];
  readonly signers: Readonly<Record<string, readonly string[]>>;

  /**
   * `facilitator` is an `officialFacilitator(…)`, shared by the schemes of one app, or for
   * `batch-settlement` an `officialBatchFacilitator(…)` holding the key of `receiverAuthorizer`.
   */
  constructor(
    readonly scheme: "exact" | "upto" | "batch-settlement",
    private readonly facilitator: Pick<ReturnType<typeof officialFacilitator>, "verify" | "settle">,
    chainId: number,
    relayer: Hex,
    receiverAuthorizer?: Hex,
  ) {
    const network = `eip155:${chainId}` as Network;
    const extra =
      scheme === "upto"
        ? { facilitatorAddress: relayer }
        : scheme === "batch-settlement" && receiverAuthorizer
          ? { receiverAuthorizer }
          : undefined;
    this.kinds = [{ x402Version: 2, scheme, network, ...(extra ? { extra } : {}) }];
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

/**
 * The official `batch-settlement` scheme (test/support's `officialBatchFacilitator`, an `x402Facilitator` of
 * its own) sending from `relayerKey` and signing claims and refunds as `authorizerKey`.
 */
export function officialBatchScheme(
  rpcUrl: string,
  chainId: number,
  relayerKey: Hex,
  authorizerKey: Hex,
): OfficialScheme {
  return new OfficialScheme(
    "batch-settlement",
    officialBatchFacilitator(rpcUrl, chainId, relayerKey, authorizerKey),
    chainId,
    privateKeyToAccount(relayerKey).address,
    privateKeyToAccount(authorizerKey).address,
  );
}

/** The official facilitator as an HTTP server, listening on a free port of 127.0.0.1. */
export async function startOfficialFacilitator(options: {
  rpcUrl: string;
  chainId: number;
  relayerKey: Hex;
  /** Also `upto` (exact serves EIP-3009 and Permit2 payloads alike). */
  upto?: boolean;
  /** Also `batch-settlement`, from a relayer key of its own and with a receiver-authorizer key. */
  batch?: { relayerKey: Hex; authorizerKey: Hex };
}): Promise<{ url: string; app: FastifyInstance; stop(): Promise<void> }> {
  const { rpcUrl, chainId, batch } = options;
  const { app } = buildFacilitatorApp({
    schemes: [
      ...officialSchemes(rpcUrl, chainId, options.relayerKey, { upto: options.upto }),
      ...(batch ? [officialBatchScheme(rpcUrl, chainId, batch.relayerKey, batch.authorizerKey)] : []),
    ],
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, app, stop: () => app.close() };
}
