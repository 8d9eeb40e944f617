import { createHmac, timingSafeEqual } from "node:crypto";
import {
  buildSIWxSchema,
  parseSIWxHeader,
  SIGN_IN_WITH_X,
  type SIWxErrorCode,
  type SIWxExtension,
  type SIWxExtensionInfo,
  type SIWxPayload,
  validateSIWxMessage,
} from "@x402/extensions/sign-in-with-x";
import { type Address, getAddress, type Hex, isAddress } from "viem";
import {
  InvalidSignatureError,
  keccak256,
  type Network,
  randomNonce,
  recoverAddress,
} from "../protocol/index.ts";

/** The extension's key in `PaymentRequired.extensions`, and its request header (node lowercases names). */
export { SIGN_IN_WITH_X };
export const SIWX_HEADER = SIGN_IN_WITH_X.toLowerCase();

/**
 * Response header of ours carrying the next challenge (`{ info, supportedChains }`, base64 JSON) on every
 * response a session route serves. With nonces accepted once, each request needs a fresh server nonce; this
 * hands the client one without the 402 round trip the official flow spends on it.
 */
export const SIWX_CHALLENGE_HEADER = "sign-in-with-x-challenge";

/** What a client signs and what it gets back: the 402's extension without its JSON schema. */
export type SiwxChallenge = Pick<SIWxExtension, "info" | "supportedChains">;

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
};

/** `@x402/extensions`' default `maxAge`, passed explicitly because the nonce store's lifetime relies on it. */
export const SIWX_MAX_AGE_MS = 5 * 60_000;

/** How a SIGN-IN-WITH-X header was judged. */
export type SiwxVerdict =
  /** Signed by a payer who paid for the path: serve without payment. */
  | { kind: "granted"; payer: Address }
  /** A valid proof from a wallet that has not paid for the path: the payment flow decides. */
  | { kind: "unpaid"; payer: Address }
  | { kind: "refused"; code: SIWxErrorCode; message: string }
  /** Not a SIWX payload, or one whose fields cannot form a SIWE message. */
  | { kind: "malformed"; message: string };

/** A payload field that would change the message's line structure or that is not what EIP-4361 names. */
export class MalformedSiweError extends Error {
  override name = "MalformedSiweError";
}

/** The signed payload without what signing adds, as the message is built from it. */
export type SiweFields = Omit<SIWxPayload, "signature" | "signatureScheme">;

const EIP155 = /^eip155:(\d+)$/;
const LINE_BREAK = /[\r\n]/;

/**
 * The EIP-4361 message `formatSIWEMessage` (@x402/extensions, through the `siwe` library) builds, byte for
 * byte (a test holds the two together). Written out because the library re-parses every message it builds
 * with its ABNF parser: 0.8 ms a message against 2 µs here, paid by the server on every session request
 * and by the agent on every signature. Fields that the library's parser would refuse because they break
 * the line structure are refused here too, so one message never reads as another.
 */
export function siweMessage(fields: SiweFields): string {
  const chain = EIP155.exec(fields.chainId);
  if (!chain) throw new MalformedSiweError(`chainId ${JSON.stringify(fields.chainId)} is not eip155:<id>`);
  if (!isAddress(fields.address, { strict: true })) {
    throw new MalformedSiweError(`address ${JSON.stringify(fields.address)} is not an EIP-55 address`);
  }
  const lines = [
    fields.domain,
    fields.uri,
    fields.version,
    fields.nonce,
    fields.issuedAt,
    fields.statement,
    fields.expirationTime,
    fields.notBefore,
    fields.requestId,
    ...(fields.resources ?? []),
  ];
  if (lines.some((value) => value !== undefined && LINE_BREAK.test(value))) {
    throw new MalformedSiweError("a SIWX field holds a line break");
  }
  const head = `${fields.domain} wants you to sign in with your Ethereum account:\n${getAddress(fields.address)}`;
  const body = [
    `URI: ${fields.uri}`,
    `Version: ${fields.version}`,
    `Chain ID: ${Number(chain[1])}`,
    `Nonce: ${fields.nonce}`,
  ];
  if (fields.issuedAt) body.push(`Issued At: ${fields.issuedAt}`);
  if (fields.expirationTime) body.push(`Expiration Time: ${fields.expirationTime}`);
  if (fields.notBefore) body.push(`Not Before: ${fields.notBefore}`);
  if (fields.requestId !== undefined) body.push(`Request ID: ${fields.requestId}`);
  if (fields.resources) body.push(["Resources:", ...fields.resources.map((r) => `- ${r}`)].join("\n"));
  const intro = fields.statement === undefined ? `${head}\n\n` : `${head}\n\n${fields.statement}\n`;
  return `${intro}\n${body.join("\n")}`;
}

/** The EIP-191 `personal_sign` digest of `message`, what viem's `hashMessage` gives. */
export function siweDigest(message: string): Uint8Array {
  const bytes = Buffer.from(message, "utf8");
  return keccak256(Buffer.concat([Buffer.from(`\x19Ethereum Signed Message:\n${bytes.length}`), bytes]));
}

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
    options: Pick<SessionsOptions, "maxPayers" | "maxUsedNonces"> = {},
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
    // EOAs only: a contract wallet's ERC-1271 / ERC-6492 proof would need a chain call, which sessions avoid.
    let signer: Address;
    try {
      signer = recoverAddress(siweDigest(message), payload.signature as Hex);
    } catch (error) {
      if (!(error instanceof InvalidSignatureError)) throw error;
      return refused("invalid_siwx_malformed_signature", error.message);
    }
    if (signer !== payload.address.toLowerCase()) {
      return refused("invalid_siwx_signature", "the message was not signed by its address");
    }
    const payer = getAddress(signer);
    if (!this.hasPaid(path, payer)) return { kind: "unpaid", payer };
    // Checked again now: another request may have used the nonce while this one was being validated.
    if (!this.unused(payload.nonce, issuedAtMs)) {
      return refused("invalid_siwx_nonce", "nonce already used");
    }
    this.use(payload.nonce, issuedAtMs);
    return { kind: "granted", payer };
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

/** The value of {@link SIWX_CHALLENGE_HEADER}: the challenge without its schema, which the client knows. */
export function encodeSiwxChallenge(extension: SIWxExtension): string {
  const challenge: SiwxChallenge = { info: extension.info, supportedChains: extension.supportedChains };
  return Buffer.from(JSON.stringify(challenge)).toString("base64");
}
