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
 * The difference is cost. The digest is hashed by hand and the signature recovered in-process, and the
 * payer's code is only fetched when ECDSA recovery does not already prove the signer. With simulation on,
 * the chain is asked once, and an ECDSA signature is not even recovered when the token accepts the
 * simulated transfer under the domain separator computed here from `extra` (see {@link Signature}).
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
  const signature = new Signature(chain, separator, exact);
  // With simulation on, an ECDSA signature is checked last: the token's own check may prove it (below).
  // Every verdict the reference only reaches after its signature check still waits for this one.
  const deferred = options.simulate && exact.signature.length === 132;
  if (!deferred) {
    const invalid = await signature.check();
    if (invalid) return invalid;
  }

  let failure: Verdict | undefined;
  const now = Math.floor(Date.now() / 1000);
  if (authorization.to.toLowerCase() !== requirements.payTo.toLowerCase()) {
    failure = { ok: false, reason: "invalid_exact_evm_recipient_mismatch" };
  } else if (BigInt(authorization.validBefore) < BigInt(now + options.validBeforeBufferSeconds)) {
    failure = { ok: false, reason: "invalid_exact_evm_payload_authorization_valid_before" };
  } else if (BigInt(authorization.validAfter) > BigInt(now)) {
    failure = { ok: false, reason: "invalid_exact_evm_payload_authorization_valid_after" };
  } else if (BigInt(authorization.value) !== BigInt(requirements.amount)) {
    failure = { ok: false, reason: "invalid_exact_evm_payload_authorization_value_mismatch" };
  } else if (!(await assetCheck)) {
    failure = { ok: false, reason: "asset_not_deployed_contract" };
  }
  if (failure) return (deferred && (await signature.check())) || failure;

  if (options.simulate) {
    const simulated = await chain.simulate(asset, exact);
    // The token checked the signature itself, over a digest built on its DOMAIN_SEPARATOR(): when that is
    // the separator computed here, the digests are the same and its acceptance proves the signature.
    const proven = simulated.ok && simulated.domainSeparator?.toLowerCase() === toHex(separator);
    if (deferred && !proven) {
      const invalid = await signature.check();
      if (invalid) return invalid;
    }
    if (!simulated.ok) {
      return chain.diagnose(asset, exact, { name, version, amount: BigInt(requirements.amount) }, simulated);
    }
  }
  // Settle keys its ledger on the digest; verify never reads it, so it is only hashed on demand.
  return {
    ok: true,
    get digest() {
      return signature.digest();
    },
  };
}

/** The signature of one payment: its digest, hashed at most once, and the reference's rule applied to it. */
class Signature {
  private bytes: Uint8Array | undefined;
  private hash: Hex | undefined;

  constructor(
    private readonly chain: ChainChecks,
    private readonly separator: Uint8Array,
    private readonly exact: ExactEvmPayload,
  ) {}

  private digestBytes(): Uint8Array {
    this.bytes ??= transferAuthorizationDigest(this.separator, this.exact.authorization);
    return this.bytes;
  }

  digest(): Hex {
    this.hash ??= toHex(this.digestBytes());
    return this.hash;
  }

  /** Undefined when the signature holds, else the verdict that refuses it. */
  check(): Promise<Verdict | undefined> {
    return checkSignature(
      this.chain,
      this.exact.authorization.from,
      this.digestBytes(),
      this.exact.signature,
    );
  }
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
  digest: Uint8Array,
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
    return (await chain.isValidContractSignature(from, toHex(digest), inner)) ? undefined : invalid;
  }
  if (!deployed) return invalid;
  return (await chain.isValidContractSignature(from, toHex(digest), signature)) ? undefined : invalid;
}
