import type { FastifyInstance } from "fastify";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { buildFacilitatorApp, type FacilitatorScheme, type SchemeRequest } from "../src/facilitator/index.ts";
import type { Network, SettleResponse, SupportedKind, VerifyResponse } from "../src/protocol/index.ts";
import { officialFacilitator } from "../test/support/official-facilitator.ts";

/**
 * The official `x402Facilitator` (with `@x402/evm`'s `ExactEvmScheme`, one relayer key) behind the very
 * fastify app our facilitator uses: same routes, body schema, error handling and metrics, so an HTTP
 * benchmark compares the two verifiers and settlers and nothing else.
 */
export class OfficialExactScheme implements FacilitatorScheme {
  readonly scheme = "exact";
  readonly kinds: readonly SupportedKind[];
  readonly signers: Readonly<Record<string, readonly string[]>>;
  private readonly facilitator: ReturnType<typeof officialFacilitator>;

  constructor(rpcUrl: string, chainId: number, relayerKey: Hex) {
    const network = `eip155:${chainId}` as Network;
    this.kinds = [{ x402Version: 2, scheme: "exact", network }];
    this.signers = { "eip155:*": [privateKeyToAccount(relayerKey).address] };
    this.facilitator = officialFacilitator(rpcUrl, chainId, relayerKey);
  }

  verify({ paymentPayload, paymentRequirements }: SchemeRequest): Promise<VerifyResponse> {
    return this.facilitator.verify(paymentPayload, paymentRequirements);
  }

  settle({ paymentPayload, paymentRequirements }: SchemeRequest): Promise<SettleResponse> {
    return this.facilitator.settle(paymentPayload, paymentRequirements);
  }
}

/** The official facilitator as an HTTP server, listening on a free port of 127.0.0.1. */
export async function startOfficialFacilitator(options: {
  rpcUrl: string;
  chainId: number;
  relayerKey: Hex;
}): Promise<{ url: string; app: FastifyInstance; stop(): Promise<void> }> {
  const { app } = buildFacilitatorApp({
    schemes: [new OfficialExactScheme(options.rpcUrl, options.chainId, options.relayerKey)],
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, app, stop: () => app.close() };
}
