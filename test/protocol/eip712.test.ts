import { authorizationTypes } from "@x402/evm";
import { bytesToHex, getAddress, type Hex, hashDomain, hashTypedData } from "viem";
import { describe, expect, it } from "vitest";
import {
  domainFromRequirements,
  type Eip3009Domain,
  type ExactEvmAuthorization,
  eip712DomainSeparator,
  transferAuthorizationDigest,
  transferWithAuthorizationPrimaryType,
  transferWithAuthorizationTypes,
  typedDataMessage,
  X402Error,
} from "../../src/protocol/index.ts";
import { BASE_USDC, randomAddress, randomAuthorization, randomHex, UINT256_MAX } from "./helpers.ts";

const EIP712_DOMAIN_TYPES = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
] as const;

function viemDigest(domain: Eip3009Domain, authorization: ExactEvmAuthorization): Hex {
  return hashTypedData({
    domain: { ...domain, verifyingContract: getAddress(domain.verifyingContract) },
    types: transferWithAuthorizationTypes,
    primaryType: transferWithAuthorizationPrimaryType,
    message: typedDataMessage(authorization),
  });
}

function ourDigest(domain: Eip3009Domain, authorization: ExactEvmAuthorization): Hex {
  return bytesToHex(transferAuthorizationDigest(eip712DomainSeparator(domain), authorization));
}

describe("EIP-712 domain separator", () => {
  it("equals viem hashDomain for Base USDC", () => {
    const expected = hashDomain({
      domain: { ...BASE_USDC, chainId: BigInt(BASE_USDC.chainId) },
      types: { EIP712Domain: EIP712_DOMAIN_TYPES },
    });
    expect(bytesToHex(eip712DomainSeparator(BASE_USDC))).toBe(expected);
    // The published DOMAIN_SEPARATOR() of Base USDC (FiatTokenV2_2 at 0x8335…2913).
    expect(expected).toBe("0x02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f");
  });

  it("equals viem hashDomain for random domains, including non-ASCII names and huge chain ids", () => {
    for (let i = 0; i < 50; i++) {
      const domain = {
        name: `Tökén ${randomHex(4)} 💵`,
        version: String(i),
        chainId: i % 2 ? BigInt(randomHex(32)) : i,
        verifyingContract: randomAddress(),
      };
      const expected = hashDomain({
        domain: {
          ...domain,
          chainId: BigInt(domain.chainId),
          verifyingContract: getAddress(domain.verifyingContract),
        },
        types: { EIP712Domain: EIP712_DOMAIN_TYPES },
      });
      expect(bytesToHex(eip712DomainSeparator(domain))).toBe(expected);
    }
  });

  it("memoises per token, chain id, name and version, whatever the address casing or chain id type", () => {
    const first = eip712DomainSeparator(BASE_USDC);
    expect(
      eip712DomainSeparator({
        ...BASE_USDC,
        chainId: 8453n,
        verifyingContract: BASE_USDC.verifyingContract.toLowerCase(),
      }),
    ).toBe(first);
    expect(eip712DomainSeparator({ ...BASE_USDC, version: "1" })).not.toEqual(first);
    // A name/version split must not collide with another split of the same characters.
    expect(eip712DomainSeparator({ ...BASE_USDC, name: "a|1", version: "b" })).not.toEqual(
      eip712DomainSeparator({ ...BASE_USDC, name: "a", version: "1|b" }),
    );
  });

  it("rejects a verifying contract that is not an address", () => {
    expect(() => eip712DomainSeparator({ ...BASE_USDC, verifyingContract: "0x1234" })).toThrow(X402Error);
  });
});

describe("TransferWithAuthorization digest", () => {
  it("uses the same EIP-712 types as @x402/evm", () => {
    expect(transferWithAuthorizationTypes).toEqual(authorizationTypes);
  });

  it("equals viem hashTypedData over random authorizations and domains", () => {
    for (let i = 0; i < 500; i++) {
      const domain =
        i % 5 === 0 ? BASE_USDC : { ...BASE_USDC, chainId: 1 + i, verifyingContract: randomAddress() };
      const authorization = randomAuthorization();
      expect(ourDigest(domain, authorization), JSON.stringify(authorization)).toBe(
        viemDigest(domain, authorization),
      );
    }
  });

  it("equals viem at the uint256 boundaries", () => {
    const cases = ["0", "1", String(2 ** 53 - 1), String(2 ** 53), "999999999999999", "1000000000000000"];
    cases.push((2n ** 64n).toString(), (2n ** 128n - 1n).toString(), UINT256_MAX.toString());
    for (const value of cases) {
      const authorization = { ...randomAuthorization(), value, validAfter: value, validBefore: value };
      expect(ourDigest(BASE_USDC, authorization), value).toBe(viemDigest(BASE_USDC, authorization));
    }
  });

  it("accepts leading zeros as the same integer, like viem's BigInt", () => {
    const authorization = { ...randomAuthorization(), value: "0000000000000000000010000" };
    expect(ourDigest(BASE_USDC, authorization)).toBe(
      ourDigest(BASE_USDC, { ...authorization, value: "10000" }),
    );
  });

  it("is the same for checksummed, lowercase and uppercase-hex addresses", () => {
    const authorization = randomAuthorization();
    const expected = viemDigest(BASE_USDC, authorization);
    const lower = {
      ...authorization,
      from: authorization.from.toLowerCase() as Hex,
      to: authorization.to.toLowerCase() as Hex,
      nonce: authorization.nonce.toLowerCase() as Hex,
    };
    const checksummed = {
      ...authorization,
      from: getAddress(authorization.from),
      to: getAddress(authorization.to),
    };
    const upper = {
      ...authorization,
      from: `0x${authorization.from.slice(2).toUpperCase()}` as Hex,
      nonce: `0x${authorization.nonce.slice(2).toUpperCase()}` as Hex,
    };
    expect(ourDigest(BASE_USDC, lower)).toBe(expected);
    expect(ourDigest(BASE_USDC, checksummed)).toBe(expected);
    expect(ourDigest(BASE_USDC, upper)).toBe(expected);
  });

  it("does not leak one call's fields into the next (the buffers are reused)", () => {
    const big = { ...randomAuthorization(), value: UINT256_MAX.toString() };
    const small = { ...randomAuthorization(), value: "1" };
    ourDigest(BASE_USDC, big);
    expect(ourDigest(BASE_USDC, small)).toBe(viemDigest(BASE_USDC, small));
  });

  it.each([
    ["value", { value: (UINT256_MAX + 1n).toString() }],
    ["value", { value: "-1" }],
    ["value", { value: "1e6" }],
    ["value", { value: "" }],
    ["validBefore", { validBefore: " 1" }],
    ["from", { from: "0x1234" }],
    ["to", { to: `0x${"g".repeat(40)}` }],
    ["nonce", { nonce: randomHex(31) }],
    ["nonce", { nonce: randomHex(32).slice(2) }],
  ])("rejects a bad %s with invalid_payload", (field, patch) => {
    const authorization = { ...randomAuthorization(), ...patch } as ExactEvmAuthorization;
    const separator = eip712DomainSeparator(BASE_USDC);
    expect(() => transferAuthorizationDigest(separator, authorization)).toThrow(
      expect.objectContaining({ code: "invalid_payload", details: { field } }),
    );
  });

  it("rejects a domain separator that is not 32 bytes", () => {
    expect(() => transferAuthorizationDigest(new Uint8Array(31), randomAuthorization())).toThrow(TypeError);
  });
});

describe("domainFromRequirements", () => {
  const requirements = {
    scheme: "exact",
    network: "eip155:8453" as const,
    asset: BASE_USDC.verifyingContract,
    amount: "10000",
    payTo: randomAddress(),
    maxTimeoutSeconds: 60,
    extra: { name: "USD Coin", version: "2" },
  };

  it("takes name and version from extra and the chain id from the network", () => {
    expect(domainFromRequirements(requirements)).toEqual(BASE_USDC);
  });

  it("reports a missing name or version as invalid_exact_evm_missing_eip712_domain", () => {
    expect(() => domainFromRequirements({ ...requirements, extra: { name: "USD Coin" } })).toThrow(
      expect.objectContaining({ code: "invalid_exact_evm_missing_eip712_domain" }),
    );
  });

  it("reports a non-eip155 network as invalid_network", () => {
    expect(() => domainFromRequirements({ ...requirements, network: "solana:mainnet" })).toThrow(
      expect.objectContaining({ code: "invalid_network" }),
    );
  });
});
