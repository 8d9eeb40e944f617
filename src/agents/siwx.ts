import {
  assertSIWxChallengeBoundToOrigin,
  SIGN_IN_WITH_X,
  type SIWxPayload,
} from "@x402/extensions/sign-in-with-x";
import type { Address, Hex } from "viem";
import {
  decodeSiwxChallenge,
  MalformedSiweError,
  parseSiwxChallenge,
  SIWX_CHALLENGE_HEADER,
  SIWX_MAX_AGE_MS,
  type SiwxChallenge,
  siweMessage,
} from "../protocol/index.ts";
import { header, type ResponseHeaders } from "./http.ts";

/** Signs a SIWE message (EIP-191 `personal_sign`). */
export type SiwxSigner = { address: Address; signMessage(message: string): Hex | Promise<Hex> };

/** A signed SIGN-IN-WITH-X header, and until when (`Date.now()` ms) a server should still take it. */
export type SiwxProof = { header: string; usableUntil: number };

/** Kept short of a challenge's limits: the request still has to reach the server, whose clock may differ. */
const MARGIN_MS = 30_000;

function usableUntil(info: SiwxChallenge["info"]): number {
  const limit = Math.min(
    Date.parse(info.issuedAt) + SIWX_MAX_AGE_MS,
    info.expirationTime === undefined ? Number.POSITIVE_INFINITY : Date.parse(info.expirationTime),
  );
  return Number.isNaN(limit) ? Number.NEGATIVE_INFINITY : limit - MARGIN_MS;
}

type Entry = {
  /** The next challenge a server handed out, not yet signed. */
  challenge?: SiwxChallenge;
  /** The last proof a server took, reusable while valid when the server hands out no new challenges. */
  proof?: SiwxProof;
};

/**
 * An agent's Sign-In-With-X state: which resources it paid for, and per resource the material for its next
 * proof. A server that accepts each nonce once (ours) hands out the next challenge with every response it
 * serves, so the next proof is signed without a 402 round trip. A server that tracks no nonces (the
 * official `@x402/extensions` server) takes the same proof again, so the last one is reused until close to
 * its expiry. With neither, the agent asks: request, 402 with a challenge, proof, as the official client.
 * Resources are `origin + path`, as servers record payments by path.
 */
export class SiwxCredentials {
  private readonly resources = new Map<string, Entry>();

  constructor(private readonly signer: SiwxSigner) {}

  hasPaid(url: URL): boolean {
    return this.resources.has(key(url));
  }

  /** The server settled a payment for `url`, answered with `headers`. */
  paid(url: URL, headers: ResponseHeaders): void {
    if (!this.resources.has(key(url))) this.resources.set(key(url), {});
    this.observe(url, headers, undefined);
  }

  /** A proof for `url` without a round trip, or undefined when a 402 must provide the challenge. */
  async ready(url: URL): Promise<SiwxProof | undefined> {
    const entry = this.resources.get(key(url));
    if (!entry) return undefined;
    const { challenge, proof } = entry;
    entry.challenge = undefined;
    const now = Date.now();
    if (challenge && usableUntil(challenge.info) > now) return this.sign(url, challenge);
    if (proof && proof.usableUntil > now) return proof;
    entry.proof = undefined;
    return undefined;
  }

  /** A proof answering a 402's `sign-in-with-x` challenge, or undefined when it has none this agent signs. */
  answer(url: URL, extensions: Record<string, unknown> | undefined): Promise<SiwxProof | undefined> {
    const challenge = parseSiwxChallenge(extensions?.[SIGN_IN_WITH_X]);
    return challenge ? this.sign(url, challenge) : Promise.resolve(undefined);
  }

  /**
   * What a response to `url` says for the next proof: a new challenge, or else (when `sent` was served)
   * that the server takes proofs more than once.
   */
  observe(url: URL, headers: ResponseHeaders, sent: SiwxProof | undefined): void {
    const entry = this.resources.get(key(url));
    if (!entry) return;
    const next = header(headers, SIWX_CHALLENGE_HEADER);
    const challenge = next ? decodeSiwxChallenge(next) : undefined;
    entry.challenge = challenge;
    entry.proof = challenge ? undefined : sent;
  }

  /**
   * Signs the challenge for this agent's address on an EIP-191 chain, after the same origin check the
   * official client makes (a challenge naming another site is a phishing attempt). The payload is
   * `createSIWxPayload`'s, and the header the bytes `encodeSIWxHeader` gives, through Buffer: its
   * char-by-char base64 cost 30 µs a proof, a tenth of the agent's whole proof.
   */
  private async sign(url: URL, challenge: SiwxChallenge): Promise<SiwxProof | undefined> {
    const chain = challenge.supportedChains.find(
      (c) => c.type === "eip191" && c.chainId.startsWith("eip155:"),
    );
    if (!chain) return undefined;
    try {
      assertSIWxChallengeBoundToOrigin(challenge.info, url);
    } catch {
      return undefined;
    }
    const { info } = challenge;
    const fields: Omit<SIWxPayload, "signature"> = {
      domain: info.domain,
      address: this.signer.address,
      statement: info.statement,
      uri: info.uri,
      version: info.version,
      chainId: chain.chainId,
      type: chain.type,
      nonce: info.nonce,
      issuedAt: info.issuedAt,
      expirationTime: info.expirationTime,
      notBefore: info.notBefore,
      requestId: info.requestId,
      resources: info.resources,
    };
    let message: string;
    try {
      message = siweMessage(fields);
    } catch (error) {
      if (error instanceof MalformedSiweError) return undefined;
      throw error;
    }
    const signature = await this.signer.signMessage(message);
    const payload: SIWxPayload = { ...fields, signature };
    return {
      header: Buffer.from(JSON.stringify(payload)).toString("base64"),
      usableUntil: usableUntil(info),
    };
  }
}

function key(url: URL): string {
  return `${url.origin}${url.pathname}`;
}
