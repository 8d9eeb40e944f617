import { z } from "@x402/core/schemas";
import type { SIWxExtension, SIWxPayload } from "@x402/extensions/sign-in-with-x";
import { SIGN_IN_WITH_X, SIWxPayloadSchema } from "@x402/extensions/sign-in-with-x";
import { getAddress, isAddress } from "viem";
import { keccak256 } from "./keccak.ts";

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

// The signed payload's fields, less what the client adds (its address and signature), chains listed apart.
const ChallengeSchema = z.object({
  info: SIWxPayloadSchema.omit({
    address: true,
    chainId: true,
    type: true,
    signatureScheme: true,
    signature: true,
  }),
  supportedChains: z.array(SIWxPayloadSchema.pick({ chainId: true, type: true, signatureScheme: true })),
});

/** A challenge from a 402's `extensions`, or undefined when the value is not one. */
export function parseSiwxChallenge(value: unknown): SiwxChallenge | undefined {
  const parsed = ChallengeSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** The value of {@link SIWX_CHALLENGE_HEADER}: the challenge without its schema, which the client knows. */
export function encodeSiwxChallenge(extension: SiwxChallenge): string {
  const challenge: SiwxChallenge = { info: extension.info, supportedChains: extension.supportedChains };
  return Buffer.from(JSON.stringify(challenge)).toString("base64");
}

/** The challenge in a {@link SIWX_CHALLENGE_HEADER} value, or undefined when it holds none. */
export function decodeSiwxChallenge(value: string): SiwxChallenge | undefined {
  try {
    return parseSiwxChallenge(JSON.parse(Buffer.from(value, "base64").toString("utf8")));
  } catch {
    return undefined;
  }
}

/** `@x402/extensions`' default `maxAge`, passed explicitly because the nonce store's lifetime relies on it. */
export const SIWX_MAX_AGE_MS = 5 * 60_000;

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
