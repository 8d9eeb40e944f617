import { request as httpRequest } from "undici";
import { type Address, getAddress, type Hash, type Hex } from "viem";
import {
  addressFromPrivateKey,
  authorizationFor,
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  domainFromRequirements,
  encodePaymentSignatureHeader,
  PAYMENT_REQUIRED_HEADER,
  PAYMENT_RESPONSE_HEADER,
  PAYMENT_SIGNATURE_HEADER,
  type PaymentRequired,
  type PaymentRequirements,
  signTransferAuthorization,
} from "../protocol/index.ts";

/**
 * x402 by hand, for a scenario's cases: a challenge read, a payment signed and a raw header sent as any
 * client would, outside an agent's books, so that a case can send what no honest agent would (one header
 * to two servers, a tampered one) and read exactly what came back.
 */

/** The 402 challenge of a path on a server, decoded; throws when the path asks for no payment. */
export async function challengeOf(serverUrl: string, path: string): Promise<PaymentRequired> {
  const response = await httpRequest(new URL(path, serverUrl));
  await response.body.dump();
  const header = response.headers[PAYMENT_REQUIRED_HEADER.toLowerCase()];
  if (response.statusCode !== 402 || typeof header !== "string") {
    throw new Error(`${path} answered ${response.statusCode} without a challenge`);
  }
  return decodePaymentRequiredHeader(header);
}

export type HandSignedPayment = {
  header: string;
  /** The decoded `PaymentPayload`, as plain JSON. */
  payload: Record<string, unknown>;
  requirements: PaymentRequirements;
  payer: Address;
};

/** A correctly signed v2 `exact` payment (EIP-3009) for the challenge's first accept. */
export function signPayment(required: PaymentRequired, privateKey: Hex): HandSignedPayment {
  const requirements = required.accepts[0];
  if (!requirements) throw new Error("the challenge offers nothing");
  const payer = getAddress(addressFromPrivateKey(privateKey));
  const authorization = authorizationFor(payer, requirements);
  const signature = signTransferAuthorization(
    privateKey,
    domainFromRequirements(requirements),
    authorization,
  );
  const payload = {
    x402Version: 2 as const,
    ...(required.resource ? { resource: required.resource } : {}),
    accepted: requirements,
    payload: { signature, authorization },
  };
  return {
    header: encodePaymentSignatureHeader(payload),
    payload: JSON.parse(JSON.stringify(payload)) as Record<string, unknown>,
    requirements,
    payer,
  };
}

/** What a raw request got: its status, the x402 code (or `http_<status>`), and the receipt's transaction. */
export type RawAnswer = { status: number; code: string; served: boolean; transaction?: Hash };

/** Sends a raw `PAYMENT-SIGNATURE` header (or none) and reads what came back; never throws. */
export async function sendRaw(
  serverUrl: string,
  path: string,
  header: string | undefined,
): Promise<RawAnswer> {
  let response: Awaited<ReturnType<typeof httpRequest>>;
  try {
    response = await httpRequest(new URL(path, serverUrl), {
      headers: header === undefined ? {} : { [PAYMENT_SIGNATURE_HEADER]: header },
    });
  } catch (error) {
    return { status: 0, code: (error as { code?: string }).code ?? "transport_error", served: false };
  }
  const text = await response.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  const status = response.statusCode;
  let code = (body as { error?: unknown } | undefined)?.error;
  const required = response.headers[PAYMENT_REQUIRED_HEADER.toLowerCase()];
  if (status === 402 && typeof required === "string") {
    try {
      code = decodePaymentRequiredHeader(required).error ?? code;
    } catch {
      // the body's code stands
    }
  }
  const receipt = response.headers[PAYMENT_RESPONSE_HEADER.toLowerCase()];
  let transaction: Hash | undefined;
  if (typeof receipt === "string") {
    try {
      const settlement = decodePaymentResponseHeader(receipt);
      if (settlement.success && settlement.transaction) transaction = settlement.transaction as Hash;
    } catch {
      // no usable receipt
    }
  }
  return {
    status,
    code: typeof code === "string" && code ? code : `http_${status}`,
    served: status < 400,
    ...(transaction ? { transaction } : {}),
  };
}
