import { secp256k1 } from "@noble/curves/secp256k1";
import { x402Client } from "@x402/core/client";
import * as coreHttp from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme as ExactEvmFacilitator } from "@x402/evm/exact/facilitator";
import { getAddress, type Hex, parseSignature } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import {
  addressFromPrivateKey,
  decodePaymentSignatureHeader,
  domainFromRequirements,
  eip712DomainSeparator,
  encodePaymentSignatureHeader,
  type PaymentPayload,
  type PaymentRequired,
  type PaymentRequirements,
  parseExactEvmPayload,
  randomNonce,
  recoverAddress,
  signTransferAuthorization,
  transferAuthorizationDigest,
} from "../../src/protocol/index.ts";
import { officialChainStub } from "../support/official-facilitator.ts";
import { BASE_USDC } from "./helpers.ts";

const PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const MOCK_ASSET = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

function paymentRequiredFor(network: `${string}:${string}`, asset: string): PaymentRequired {
  return {
    x402Version: 2,
    resource: { url: "http://127.0.0.1:3000/weather", description: "weather", mimeType: "application/json" },
    accepts: [
      {
        scheme: "exact",
        network,
        asset,
        amount: "10000",
        payTo: PAY_TO.toLowerCase(),
        maxTimeoutSeconds: 300,
        extra: { name: "USD Coin", version: "2" },
      },
    ],
  };
}

describe("official client → our decoder and recovery", () => {
  it.each([
    ["Base USDC on eip155:8453", "eip155:8453", BASE_USDC.verifyingContract, true],
    ["a mock token on eip155:31337", "eip155:31337", MOCK_ASSET, false],
  ] as const)("%s", async (_, network, asset, spendControls) => {
    const key = generatePrivateKey();
    const account = privateKeyToAccount(key);
    const client = new x402Client();
    registerExactEvmScheme(client, { signer: account });
    // Spend controls only allow the SDK's default assets; the devnet's mock token is not one.
    if (!spendControls) client.setSpendControls(false);
    const paymentRequired = paymentRequiredFor(network, asset);

    const created = await client.createPaymentPayload(paymentRequired);
    const decoded = decodePaymentSignatureHeader(coreHttp.encodePaymentSignatureHeader(created));
    const exact = parseExactEvmPayload(decoded.payload);

    expect(decoded.accepted).toEqual(paymentRequired.accepts[0]);
    expect(exact.authorization).toMatchObject({ value: "10000", validAfter: "0", to: getAddress(PAY_TO) });
    const digest = transferAuthorizationDigest(
      eip712DomainSeparator(domainFromRequirements(decoded.accepted)),
      exact.authorization,
    );
    expect(recoverAddress(digest, exact.signature)).toBe(account.address.toLowerCase());
    // RFC 6979 makes signing deterministic, so ours must reproduce the official client's bytes.
    expect(
      signTransferAuthorization(key, domainFromRequirements(decoded.accepted), exact.authorization),
    ).toBe(exact.signature);
  });
});

describe("our signer → official facilitator verify", () => {
  const key = generatePrivateKey();
  const from = getAddress(addressFromPrivateKey(key));
  const requirements: PaymentRequirements = paymentRequiredFor("eip155:8453", BASE_USDC.verifyingContract)
    .accepts[0] as PaymentRequirements;

  function ourPayload(signatureFor: (signature: Hex) => Hex = (s) => s): PaymentPayload {
    const authorization = {
      from,
      to: getAddress(PAY_TO),
      value: requirements.amount,
      validAfter: "0",
      validBefore: String(Math.floor(Date.now() / 1000) + 300),
      nonce: randomNonce(),
    };
    const signature = signTransferAuthorization(key, domainFromRequirements(requirements), authorization);
    return {
      x402Version: 2,
      accepted: requirements,
      payload: { authorization, signature: signatureFor(signature) },
    };
  }

  it("accepts our payload after a trip through our encoder and core's decoder", async () => {
    const facilitator = new ExactEvmFacilitator(officialChainStub(requirements.asset));
    const payload = coreHttp.decodePaymentSignatureHeader(encodePaymentSignatureHeader(ourPayload()));
    await expect(facilitator.verify(payload, requirements)).resolves.toMatchObject({
      isValid: true,
      payer: from,
    });
  });

  it("also accepts the high-s twin off chain, which we reject (USDC would revert on it at settle)", async () => {
    const n = secp256k1.CURVE.n;
    const highS = (signature: Hex): Hex => {
      const { r, s, yParity } = parseSignature(signature);
      return `${r}${(n - BigInt(s)).toString(16).padStart(64, "0")}${yParity ? "1b" : "1c"}`;
    };
    const payload = ourPayload(highS);
    const facilitator = new ExactEvmFacilitator(officialChainStub(requirements.asset));
    await expect(facilitator.verify(payload, requirements)).resolves.toMatchObject({ isValid: true });
    const exact = parseExactEvmPayload(payload.payload);
    const digest = transferAuthorizationDigest(
      eip712DomainSeparator(domainFromRequirements(requirements)),
      exact.authorization,
    );
    expect(() => recoverAddress(digest, exact.signature)).toThrow(
      expect.objectContaining({ details: { reason: "high_s" } }),
    );
  });
});
