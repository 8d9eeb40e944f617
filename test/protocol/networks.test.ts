import { EVM_NETWORK_CHAIN_ID_MAP } from "@x402/evm/v1";
import { describe, expect, it } from "vitest";
import { chainIdFromNetwork, networkFromV1, v1NetworkName } from "../../src/protocol/index.ts";

describe("networks", () => {
  it("parses eip155 CAIP-2 ids", () => {
    expect(chainIdFromNetwork("eip155:8453")).toBe(8453);
    expect(chainIdFromNetwork("eip155:31337")).toBe(31337);
  });

  it.each([
    "base",
    "eip155:",
    "eip155:0x2105",
    "eip155:-1",
    "solana:mainnet",
    " eip155:8453",
    "eip155:9007199254740993",
  ])("rejects %j as invalid_network", (network) => {
    expect(() => chainIdFromNetwork(network)).toThrow(expect.objectContaining({ code: "invalid_network" }));
  });

  it("maps v1 names both ways, agreeing with @x402/evm", () => {
    for (const name of ["base", "base-sepolia"] as const) {
      const network = networkFromV1(name);
      expect(network).toBe(`eip155:${EVM_NETWORK_CHAIN_ID_MAP[name]}`);
      expect(v1NetworkName(network)).toBe(name);
    }
  });

  it("knows no other names", () => {
    expect(() => networkFromV1("toString")).toThrow(expect.objectContaining({ code: "invalid_network" }));
    expect(() => networkFromV1("eip155:8453")).toThrow(expect.objectContaining({ code: "invalid_network" }));
    expect(v1NetworkName("eip155:31337")).toBeUndefined();
  });
});
