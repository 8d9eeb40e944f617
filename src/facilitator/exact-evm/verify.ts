import { type Address, getAddress, type Hex, isErc6492Signature, parseErc6492Signature } from "viem";
import {
  chainIdFromNetwork,
  type ExactEvmPayload,
  eip712DomainSeparator,
  InvalidSignatureError,
  type PaymentPayload,
  type PaymentRequirements,
  recoverAddress,
  toHex,
  transferAuthorizationDigest,
  type X402ErrorCode,
} from "../../protocol/index.ts";
import type { ChainChecks } from "./chain-checks.ts";

export type Verdict = { ok: true; digest: Hex } | { ok: false; reason: X402ErrorCode; message?: string };

export type VerifyOptions = {
  /** Simulate the transfer on chain (as the reference facilitator does by default). */
  simulate: boolean;
  /** Seconds `validBefore` must lie ahead of the host clock; the reference facilitator uses 6. */
  validBeforeBufferSeconds: number;
};

/**
 * Verifies an `exact` EIP-3009 payment with the reference facilitator's checks, in its order and with its
 * codes (`@x402/evm` 2.27 `verifyEIP3009`), so that `isValid`/`invalidReason` agree with it on any payload.
 * The difference is cost: the digest is hashed and the signature recovered in-process, the payer's code is
 * only fetched when ECDSA recovery does not already prove the signer, and the chain is asked once.
 * Time checks use the host clock, as the reference does.
 */
export async function verifyExactEvm(
  chain: ChainChecks,
  payload: PaymentPayload,
  requirements: PaymentRequirements,
  exact: ExactEvmPayload,
  options: VerifyOptions,
): Promise<Verdict> {
  if (payload.accepted.scheme !== "exact" || requirements.scheme !== "exact") {
    return { ok: false, reason: "invalid_exact_evm_scheme" };
  }
  const name = requirements.extra?.name;
  const version = requirements.extra?.version;
  if (!name || !version || typeof name !== "string" || typeof version !== "string") {
    return { ok: false, reason: "invalid_exact_evm_missing_eip712_domain" };
  }
  if (payload.accepted.network !== requirements.network) {
    return { ok: false, reason: "invalid_exact_evm_network_mismatch" };
  }
  const asset = getAddress(requirements.asset);
  const assetCheck = chain.assetDeployed(asset);
  assetCheck.catch(() => {}); // awaited below, after the pure checks; a rejection must not go unhandled here

  const { authorization } = exact;
  const separator = eip712DomainSeparator({
    name,
    version,
    chainId: chainIdFromNetwork(requirements.network),
    verifyingContract: asset,
  });
  const digest = toHex(transferAuthorizationDigest(separator, authorization));
  const signatureVerdict = await checkSignature(chain, authorization.from, digest, exact.signature);
  if (signatureVerdict) return signatureVerdict;

  if (authorization.to.toLowerCase() !== requirements.payTo.toLowerCase()) {
    return { ok: false, reason: "invalid_exact_evm_recipient_mismatch" };
  }
  const now = Math.floor(Date.now() / 1000);
  if (BigInt(authorization.validBefore) < BigInt(now + options.validBeforeBufferSeconds)) {
    return { ok: false, reason: "invalid_exact_evm_payload_authorization_valid_before" };
  }
  if (BigInt(authorization.validAfter) > BigInt(now)) {
    return { ok: false, reason: "invalid_exact_evm_payload_authorization_valid_after" };
  }
  if (BigInt(authorization.value) !== BigInt(requirements.amount)) {
    return { ok: false, reason: "invalid_exact_evm_payload_authorization_value_mismatch" };
  }
  if (!(await assetCheck)) return { ok: false, reason: "asset_not_deployed_contract" };

  if (options.simulate) {
    const simulated = await chain.simulateTransfer(asset, exact, {
      name,
      version,
      amount: BigInt(requirements.amount),
    });
    if (!simulated.ok) return simulated;
  }
  return { ok: true, digest };
}

/**
 * The reference's signature rule: a payer without code must have signed with ECDSA (65 bytes); a payer
 * with code must accept the digest through ERC-1271; a counterfactual ERC-6492 wallet needs an allowed
 * factory, and none is allowed by default. A recovered ECDSA signer equal to `from` settles it without a
 * chain read. Returns undefined when the signature holds.
 */
async function checkSignature(
  chain: ChainChecks,
  from: Address,
  digest: Hex,
  signature: Hex,
): Promise<Verdict | undefined> {
  const invalid: Verdict = { ok: false, reason: "invalid_exact_evm_signature" };
  if (signature.length === 132) {
    try {
      if (recoverAddress(digest, signature) === from.toLowerCase()) return undefined;
    } catch (error) {
      if (!(error instanceof InvalidSignatureError)) throw error;
    }
  }
  const deployed = await chain.hasCode(from);
  if (isErc6492Signature(signature)) {
    if (!deployed) return { ok: false, reason: "eip6492_factory_not_allowed" };
    const inner = parseErc6492Signature(signature).signature;
    return (await chain.isValidContractSignature(from, digest, inner)) ? undefined : invalid;
  }
  if (!deployed) return invalid;
  return (await chain.isValidContractSignature(from, digest, signature)) ? undefined : invalid;
}
