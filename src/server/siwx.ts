import { createHmac, timingSafeEqual } from "node:crypto";
import {
  buildSIWxSchema,
  parseSIWxHeader,
  type SIWxErrorCode,
  type SIWxExtension,
  type SIWxExtensionInfo,
  type SIWxPayload,
  validateSIWxMessage,
} from "@x402/extensions/sign-in-with-x";
import { type Address, getAddress, type Hex } from "viem";
import {
  InvalidSignatureError,
  MalformedSiweError,
  type Network,
  randomNonce,
  recoverAddress,
  SIWX_MAX_AGE_MS,
  siweDigest,
  siweMessage,
} from "../protocol/index.ts";

/** Sessions on one paid route: after paying once, a payer signs in with its wallet instead of paying. */
export type SessionRoute = {
  /** The SIWE statement the wallet shows. */
  statement?: string;
  /** How long a signed challenge stays valid (`expirationTime`); absent, the 5-minute `issuedAt` limit alone. */
  expirationSeconds?: number;
};

export type SessionsOptions = {
  /**
   * Public origin (`https://api.example.com`) the SIWX `domain` and `uri` must name. Default: the origin the
   * request itself arrived on (its Host), which a client can choose; behind a proxy or in production, set it.
   */
  origin?: string;
  /** Paid (path, payer) pairs remembered; the oldest is forgotten past it and pays again (default 100,000). */
  maxPayers?: number;
  /** Used nonces remembered (default 100,000); see {@link SiwxSessions}. */
  maxUsedNonces?: number;
  /**
   * Verifies a proof the address's own key did not sign: a contract wallet's ERC-1271 (deployed) or
   * ERC-6492 (not yet deployed) signature, as `@x402/extensions`' `evmVerifier`, e.g. a viem public
   * client's `verifyMessage`. Absent, only EOAs sign in (no chain call on the session path).
   */
  verifyMessage?: (args: { address: Address; message: string; signature: Hex }) => Promise<boolean>;
};

/** How a SIGN-IN-WITH-X header was judged. */
export type SiwxVerdict =
  /** Signed by a payer who paid for the path: serve without payment. */
  | { kind: "granted"; payer: Address }
  /** A valid proof from a wallet that has not paid for the path: the payment flow decides. */
  | { kind: "unpaid"; payer: Address }
  | { kind: "refused"; code: SIWxErrorCode; message: string }
  /** Not a SIWX payload, or one whose fields cannot form a SIWE message. */
  | { kind: "malformed"; message: string };

const EIP155 = /^eip155:(\d+)$/;
const SCHEMA = buildSIWxSchema();
const NONCE = /^[0-9a-f]{32}$/;

/**
 * The server side of `sign-in-with-x`: fresh challenges, the record of who paid for which path, and the
 * verdict on a proof.
 *
 * Nonces, unlike in `@x402/extensions` (whose storage leaves replay tracking off): a nonce must be one this
 * server issued, and is accepted once. Issuing costs no memory: a nonce is 8 random bytes and an HMAC (keyed
 * per process) over them and the challenge's `issuedAt` and `expirationTime`, so it also proves the client
 * kept the server's times. Only used nonces are stored, until their `issuedAt` is older than the 5 minutes
 * validation allows. Past `maxUsedNonces`, the oldest used one is forgotten and every nonce issued no later
 * than it is refused from then on: under load the replay window shrinks instead of memory growing, and
 * nothing forgotten can be replayed.
 */
export class SiwxSessions {
  private readonly secret = Buffer.from(randomNonce().slice(2), "hex");
  private readonly payers = new Set<string>();
  /** Used nonce → its `issuedAt` (ms), in the order they were used. */
  private readonly used = new Map<string, number>();
  /** Nonces issued at or before this time (ms) are refused: one of them was forgotten. */
  private forgottenUpTo = Number.NEGATIVE_INFINITY;
  private readonly maxPayers: number;
  private readonly maxUsedNonces: number;

  constructor(
    private readonly network: Network,
    private readonly options: Pick<SessionsOptions, "maxPayers" | "maxUsedNonces" | "verifyMessage"> = {},
  ) {
    this.maxPayers = options.maxPayers ?? 100_000;
    this.maxUsedNonces = options.maxUsedNonces ?? 100_000;
  }

  /**
   * A fresh challenge for `resource` (see {@link publicResource}), as @x402/extensions'
   * `createSIWxResourceServerExtension` enriches a 402: its host as domain, itself as uri, a new nonce
   * and `issuedAt`.
   */
  challenge(resource: URL, route: SessionRoute): SIWxExtension {
    const uri = resource.toString();
    const now = Date.now();
    const issuedAt = new Date(now).toISOString();
    const expirationTime =
      route.expirationSeconds === undefined
        ? undefined
        : new Date(now + route.expirationSeconds * 1000).toISOString();
    const salt = randomNonce().slice(2, 18);
    const info: SIWxExtensionInfo = {
      domain: resource.host,
      uri,
      version: "1",
      nonce: `${salt}${this.mac(salt, issuedAt, expirationTime)}`,
      issuedAt,
      resources: [uri],
    };
    if (expirationTime) info.expirationTime = expirationTime;
    if (route.statement) info.statement = route.statement;
    return { info, supportedChains: [{ chainId: this.network, type: "eip191" }], schema: SCHEMA };
  }

  /**
   * Judges a SIGN-IN-WITH-X header sent for `resource` (see {@link publicResource}). The checks and codes
   * are @x402/extensions' (`validateSIWxMessage`, then the signature), plus: the uri's path must be the
   * requested path (the official checks the origin only), the chain must be this server's network, and
   * the nonce must be one this server issued and not yet used. A granted proof uses its nonce up.
   */
  async verify(header: string, resource: URL): Promise<SiwxVerdict> {
    let payload: SIWxPayload;
    try {
      payload = parseSIWxHeader(header);
    } catch (error) {
      return { kind: "malformed", message: (error as Error).message };
    }
    const issuedAtMs = Date.parse(payload.issuedAt);
    const validation = await validateSIWxMessage(payload, resource, {
      maxAge: SIWX_MAX_AGE_MS,
      checkNonce: (nonce) => this.issued(nonce, payload) && this.unused(nonce, issuedAtMs),
    });
    if (!validation.isValid) {
      return { kind: "refused", code: validation.invalidReason, message: validation.invalidMessage };
    }
    const path = resource.pathname;
    if (new URL(payload.uri).pathname !== path) {
      return refused("invalid_siwx_uri_mismatch", `uri ${payload.uri} is not for ${path}`);
    }
    if (!EIP155.test(payload.chainId)) {
      return refused("invalid_siwx_chain_id", `chainId ${payload.chainId} is not eip155:<id>`);
    }
    if (payload.chainId !== this.network || payload.type !== "eip191") {
      return refused(
        "invalid_siwx_unsupported_chain",
        `only ${this.network} with eip191 signatures, not ${payload.chainId} ${payload.type}`,
      );
    }
    let message: string;
    try {
      message = siweMessage(payload);
    } catch (error) {
      if (!(error instanceof MalformedSiweError)) throw error;
      return { kind: "malformed", message: error.message };
    }
    const signed = await this.signedBy(payload.address, message, payload.signature as Hex);
    if (signed !== true) return signed;
    const payer = getAddress(payload.address);
    if (!this.hasPaid(path, payer)) return { kind: "unpaid", payer };
    // Checked again now: another request may have used the nonce while this one was being validated.
    if (!this.unused(payload.nonce, issuedAtMs)) {
      return refused("invalid_siwx_nonce", "nonce already used");
    }
    this.use(payload.nonce, issuedAtMs);
    return { kind: "granted", payer };
  }

  /**
   * Whether `address` signed `message`: its key (recovery, no chain call), else, when a verifier is
   * configured, its contract (ERC-1271 / ERC-6492). The codes are `@x402/extensions`'.
   */
  private async signedBy(address: string, message: string, signature: Hex): Promise<true | SiwxVerdict> {
    let recovered: Address | undefined;
    let malformed: Error | undefined;
    try {
      recovered = recoverAddress(siweDigest(message), signature);
    } catch (error) {
      if (!(error instanceof InvalidSignatureError)) throw error;
      malformed = error;
    }
    if (recovered === address.toLowerCase()) return true;
    const verify = this.options.verifyMessage;
    if (!verify) {
      return malformed
        ? refused("invalid_siwx_malformed_signature", malformed.message)
        : refused("invalid_siwx_signature", "the message was not signed by its address");
    }
    try {
      if (await verify({ address: getAddress(address), message, signature })) return true;
    } catch (error) {
      return refused("invalid_siwx_verifier_error", (error as Error).message);
    }
    return refused("invalid_siwx_signature", "neither the address's key nor its contract signed the message");
  }

  /** Records a settled payment: `payer` may sign in to `path` from now on. */
  recordPayment(path: string, payer: string): void {
    const key = `${path} ${payer.toLowerCase()}`;
    // Re-inserted so that the pairs in use are the last to be forgotten.
    this.payers.delete(key);
    this.payers.add(key);
    if (this.payers.size > this.maxPayers) {
      const oldest = this.payers.values().next();
      if (!oldest.done) this.payers.delete(oldest.value);
    }
  }

  hasPaid(path: string, payer: string): boolean {
    return this.payers.has(`${path} ${payer.toLowerCase()}`);
  }

  /** Used nonces remembered now. */
  get usedNonces(): number {
    return this.used.size;
  }

  private mac(salt: string, issuedAt: string, expirationTime: string | undefined): string {
    return createHmac("sha256", this.secret)
      .update(`${salt}|${issuedAt}|${expirationTime ?? ""}`)
      .digest("hex")
      .slice(0, 16);
  }

  private issued(nonce: string, payload: SIWxPayload): boolean {
    if (!NONCE.test(nonce)) return false;
    const expected = this.mac(nonce.slice(0, 16), payload.issuedAt, payload.expirationTime);
    return timingSafeEqual(Buffer.from(expected), Buffer.from(nonce.slice(16)));
  }

  private unused(nonce: string, issuedAtMs: number): boolean {
    return issuedAtMs > this.forgottenUpTo && !this.used.has(nonce);
  }

  private use(nonce: string, issuedAtMs: number): void {
    this.used.set(nonce, issuedAtMs);
    // Nonces too old to pass validation need no remembering; they sit near the front, in order of use.
    const tooOld = Date.now() - SIWX_MAX_AGE_MS;
    for (const [oldest, issuedAt] of this.used) {
      if (issuedAt >= tooOld && this.used.size <= this.maxUsedNonces) break;
      this.used.delete(oldest);
      if (issuedAt >= tooOld) this.forgottenUpTo = Math.max(this.forgottenUpTo, issuedAt);
    }
  }
}

/**
 * The resource a request targets as the public origin names it: that origin with the request's path and
 * query, as @x402/extensions rebases a 402's resource URL. Built from the raw request target, never parsed
 * as a URL of its own, so neither a Host nor a path can move it to another origin.
 */
export function publicResource(origin: URL, requestTarget: string): URL {
  const resource = new URL(origin.origin);
  const query = requestTarget.indexOf("?");
  resource.pathname = query < 0 ? requestTarget : requestTarget.slice(0, query);
  resource.search = query < 0 ? "" : requestTarget.slice(query);
  return resource;
}

function refused(code: SIWxErrorCode, message: string): SiwxVerdict {
  return { kind: "refused", code, message };
}
