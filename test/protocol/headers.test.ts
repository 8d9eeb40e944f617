import * as core from "@x402/core/http";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MAX_HEADER_LENGTH,
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  decodePaymentSignatureHeader,
  decodeXPaymentHeader,
  decodeXPaymentResponseHeader,
  encodePaymentRequiredHeader,
  encodePaymentResponseHeader,
  encodePaymentSignatureHeader,
  encodeXPaymentHeader,
  encodeXPaymentResponseHeader,
  InvalidPaymentHeaderError,
  type PaymentPayload,
  type PaymentPayloadV1,
  type PaymentRequired,
  type PaymentRequirements,
  type SettleResponse,
} from "../../src/protocol/index.ts";
import { BASE_USDC, randomAuthorization, randomHex } from "./helpers.ts";

const requirements: PaymentRequirements = {
  scheme: "exact",
  network: "eip155:8453",
  asset: BASE_USDC.verifyingContract,
  amount: "10000",
  payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
  maxTimeoutSeconds: 300,
  extra: { name: "USD Coin", version: "2" },
};

const paymentRequired: PaymentRequired = {
  x402Version: 2,
  error: "PAYMENT-SIGNATURE header is required",
  resource: { url: "http://127.0.0.1:3000/weather", description: "Météo ☀️", mimeType: "application/json" },
  accepts: [requirements],
  extensions: {},
};

const paymentPayload: PaymentPayload = {
  x402Version: 2,
  resource: paymentRequired.resource,
  accepted: requirements,
  payload: { signature: randomHex(65), authorization: randomAuthorization() },
};

const settleResponse: SettleResponse = {
  success: true,
  payer: "0x857b06519E91e3A54538791bDbb0E22373e36b66",
  transaction: randomHex(32),
  network: "eip155:8453",
};

const v1Payload: PaymentPayloadV1 = {
  x402Version: 1,
  scheme: "exact",
  network: "base" as PaymentPayloadV1["network"],
  payload: paymentPayload.payload,
};

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function decodeError(decode: () => unknown): InvalidPaymentHeaderError {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPaymentHeaderError);
    return error as InvalidPaymentHeaderError;
  }
  throw new Error("expected the decode to throw");
}

describe("header round trips", () => {
  it("PAYMENT-REQUIRED", () => {
    expect(decodePaymentRequiredHeader(encodePaymentRequiredHeader(paymentRequired))).toEqual(
      paymentRequired,
    );
  });

  it("PAYMENT-SIGNATURE", () => {
    expect(decodePaymentSignatureHeader(encodePaymentSignatureHeader(paymentPayload))).toEqual(
      paymentPayload,
    );
  });

  it("PAYMENT-RESPONSE, success and failure", () => {
    expect(decodePaymentResponseHeader(encodePaymentResponseHeader(settleResponse))).toEqual(settleResponse);
    const failed: SettleResponse = {
      success: false,
      errorReason: "invalid_exact_evm_nonce_already_used",
      transaction: "",
      network: "eip155:8453",
    };
    expect(decodePaymentResponseHeader(encodePaymentResponseHeader(failed))).toEqual(failed);
  });

  it("X-PAYMENT and X-PAYMENT-RESPONSE (v1 network names)", () => {
    expect(decodeXPaymentHeader(encodeXPaymentHeader(v1Payload))).toEqual(v1Payload);
    const v1Settle = { ...settleResponse, network: "base" as SettleResponse["network"] };
    expect(decodeXPaymentResponseHeader(encodeXPaymentResponseHeader(v1Settle))).toEqual(v1Settle);
  });
});

describe("compatibility with @x402/core/http", () => {
  it("encodes the same bytes as core's encoders", () => {
    expect(encodePaymentRequiredHeader(paymentRequired)).toBe(
      core.encodePaymentRequiredHeader(paymentRequired),
    );
    expect(encodePaymentSignatureHeader(paymentPayload)).toBe(
      core.encodePaymentSignatureHeader(paymentPayload),
    );
    const withServerOnly = { ...settleResponse, extensionResponses: { bazaar: { status: "ok" } } };
    expect(encodePaymentResponseHeader(withServerOnly)).toBe(
      core.encodePaymentResponseHeader(withServerOnly),
    );
    expect(decodePaymentResponseHeader(encodePaymentResponseHeader(withServerOnly))).not.toHaveProperty(
      "extensionResponses",
    );
  });

  it("decodes what core's encoders produce", () => {
    expect(decodePaymentSignatureHeader(core.encodePaymentSignatureHeader(paymentPayload))).toEqual(
      paymentPayload,
    );
  });

  it("accepts exactly the base64 spellings core's decoder accepts", () => {
    const spellings = ["", "e30", "e30=", "e3", "e3=="];
    // Three lengths of JSON, so the canonical encoding ends in no, one and two `=`.
    for (const transaction of ["", "a", "ab"]) {
      const json = b64(JSON.stringify({ ...settleResponse, transaction }));
      const unpadded = json.replace(/=+$/, "");
      spellings.push(
        json,
        unpadded,
        `${unpadded}=`,
        `${unpadded}==`,
        `${unpadded}===`,
        `${json}A`,
        `${json}AA`,
      );
      spellings.push(`=${json}`, json.replace(/\+|\//g, "-"), `${json.slice(0, 8)} ${json.slice(8)}`);
    }
    for (const value of spellings) {
      const coreAccepts = (() => {
        try {
          core.decodePaymentResponseHeader(value);
          return true;
        } catch {
          return false;
        }
      })();
      const oursAccepts = (() => {
        try {
          decodePaymentResponseHeader(value);
          return true;
        } catch (error) {
          // Our schema check may reject a value core passes through; base64 and JSON must agree.
          return (error as InvalidPaymentHeaderError).details.reason === "schema";
        }
      })();
      expect(oursAccepts, JSON.stringify(value)).toBe(coreAccepts);
    }
  });
});

describe("normalisation", () => {
  it("defaults a missing or null extra to {} and drops null extensions", () => {
    const { extra: _, ...noExtra } = requirements;
    const header = b64(
      JSON.stringify({ ...paymentPayload, accepted: noExtra, extensions: null, resource: null }),
    );
    const decoded = decodePaymentSignatureHeader(header);
    expect(decoded.accepted.extra).toEqual({});
    expect(decoded).not.toHaveProperty("extensions", null);
    expect(decoded.resource).toBeUndefined();
    const nullExtra = b64(
      JSON.stringify({ ...paymentRequired, accepts: [{ ...requirements, extra: null }] }),
    );
    expect(decodePaymentRequiredHeader(nullExtra).accepts[0]?.extra).toEqual({});
  });

  it("keeps unknown keys in accepted, so a server's deep match against its offer still sees them", () => {
    const header = b64(JSON.stringify({ ...paymentPayload, accepted: { ...requirements, injected: "x" } }));
    expect(decodePaymentSignatureHeader(header).accepted).toHaveProperty("injected", "x");
  });
});

describe("malformed headers", () => {
  it("rejects bad base64 as not_base64", () => {
    const error = decodeError(() => decodePaymentSignatureHeader("not base64!"));
    expect(error.code).toBe("invalid_payload");
    expect(error.details).toEqual({ header: "PAYMENT-SIGNATURE", reason: "not_base64" });
    expect(error.message).toContain("PAYMENT-SIGNATURE");
    expect(decodeError(() => decodePaymentSignatureHeader("")).details.reason).toBe("not_base64");
    expect(decodeError(() => decodePaymentSignatureHeader("abcde")).details.reason).toBe("not_base64");
  });

  it("rejects base64 of something that is not JSON as not_json, with the parser's message", () => {
    const error = decodeError(() => decodePaymentSignatureHeader(b64("{x402Version: 2")));
    expect(error.details.reason).toBe("not_json");
    expect(error.message).toMatch(/PAYMENT-SIGNATURE header is not base64 of JSON: .+/);
  });

  it("names the fields with wrong types", () => {
    const header = b64(
      JSON.stringify({
        ...paymentPayload,
        accepted: { ...requirements, amount: 10000, maxTimeoutSeconds: "60" },
      }),
    );
    const error = decodeError(() => decodePaymentSignatureHeader(header));
    expect(error.code).toBe("invalid_payload");
    expect(error.details.reason).toBe("schema");
    expect(error.details.issues?.map((issue) => issue.path)).toEqual([
      "accepted.amount",
      "accepted.maxTimeoutSeconds",
    ]);
    expect(error.message).toContain("accepted.amount: Expected string, received number");
  });

  it("names the missing fields", () => {
    const { payload: _, accepted: __, ...rest } = paymentPayload;
    const error = decodeError(() => decodePaymentSignatureHeader(b64(JSON.stringify(rest))));
    expect(error.details.issues).toEqual([
      { path: "accepted", message: "Required" },
      { path: "payload", message: "Required" },
    ]);
  });

  it("rejects a non-CAIP-2 network in v2 and an empty accepts list", () => {
    const v1Network = b64(
      JSON.stringify({ ...paymentPayload, accepted: { ...requirements, network: "base" } }),
    );
    expect(decodeError(() => decodePaymentSignatureHeader(v1Network)).details.issues?.[0]?.path).toBe(
      "accepted.network",
    );
    const noAccepts = b64(JSON.stringify({ ...paymentRequired, accepts: [] }));
    const error = decodeError(() => decodePaymentRequiredHeader(noAccepts));
    expect(error.code).toBe("invalid_payment_requirements");
    expect(error.details.issues?.[0]?.path).toBe("accepts");
  });

  it("rejects JSON that is not an object", () => {
    for (const json of ["null", "[]", '"PAYMENT"', "2"]) {
      expect(decodeError(() => decodePaymentSignatureHeader(b64(json))).details.reason).toBe("schema");
    }
  });

  it("reports another protocol version as invalid_x402_version", () => {
    const v1InV2 = decodeError(() => decodePaymentSignatureHeader(encodeXPaymentHeader(v1Payload)));
    expect(v1InV2.code).toBe("invalid_x402_version");
    expect(v1InV2.message).toContain("x402Version 1");
    const v2InV1 = decodeError(() => decodeXPaymentHeader(encodePaymentSignatureHeader(paymentPayload)));
    expect(v2InV1.code).toBe("invalid_x402_version");
    const v3 = decodeError(() =>
      decodePaymentRequiredHeader(b64(JSON.stringify({ ...paymentRequired, x402Version: 3 }))),
    );
    expect(v3.code).toBe("invalid_x402_version");
  });

  it("rejects an oversize header before decoding it", () => {
    const big = "A".repeat(DEFAULT_MAX_HEADER_LENGTH + 4);
    const error = decodeError(() => decodePaymentSignatureHeader(big));
    expect(error.details).toEqual({ header: "PAYMENT-SIGNATURE", reason: "too_large" });
    expect(error.message).toContain(String(DEFAULT_MAX_HEADER_LENGTH));
    const header = encodePaymentSignatureHeader(paymentPayload);
    expect(decodeError(() => decodePaymentSignatureHeader(header, { maxLength: 100 })).details.reason).toBe(
      "too_large",
    );
  });

  it("validates settle responses", () => {
    const header = b64(JSON.stringify({ success: "yes", network: "eip155:8453" }));
    const error = decodeError(() => decodePaymentResponseHeader(header));
    expect(error.details.issues?.map((issue) => issue.path)).toEqual(["success", "transaction"]);
  });
});
