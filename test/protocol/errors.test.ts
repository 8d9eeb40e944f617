import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  errorCodeFromRevert,
  isX402ErrorCode,
  X402_ERROR_CODES,
  X402Error,
} from "../../src/protocol/index.ts";

/** Every string literal matching `pattern` in an installed package's ESM build. */
function literalsIn(pkg: string, pattern: RegExp): Set<string> {
  const entry = createRequire(import.meta.url).resolve(pkg);
  const esm = join(dirname(entry), "..", "esm");
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const item of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, item.name);
      if (item.isDirectory()) walk(path);
      else if (item.name.endsWith(".mjs")) {
        for (const match of readFileSync(path, "utf8").matchAll(pattern)) found.add(match[1] as string);
      }
    }
  };
  walk(esm);
  return found;
}

describe("X402_ERROR_CODES", () => {
  it("covers every EIP-3009 / settlement code the installed @x402/evm emits", () => {
    const emitted = literalsIn(
      "@x402/evm",
      /"((?:invalid_exact_evm|asset_not|settlement_|eip6492_|smart_wallet|unsupported_payload|invalid_transaction)[a-z0-9_]*)"/g,
    );
    expect(emitted.size).toBeGreaterThan(20);
    expect([...emitted].filter((code) => !isX402ErrorCode(code))).toEqual([]);
  });

  it("covers every SIWX code the installed @x402/extensions emits", () => {
    const emitted = literalsIn("@x402/extensions", /"(invalid_siwx_[a-z0-9_]*)"/g);
    expect(emitted.size).toBeGreaterThan(10);
    expect([...emitted].filter((code) => !isX402ErrorCode(code))).toEqual([]);
  });

  it("has no duplicates", () => {
    expect(new Set(X402_ERROR_CODES).size).toBe(X402_ERROR_CODES.length);
  });
});

describe("X402Error", () => {
  it("carries the code, details and cause", () => {
    const cause = new Error("boom");
    const error = new X402Error("invalid_payload", "bad", { details: { field: "x" }, cause });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: "invalid_payload", message: "bad", details: { field: "x" }, cause });
    expect(new X402Error("invalid_scheme", "no details").details).toBeUndefined();
  });
});

describe("errorCodeFromRevert", () => {
  it.each([
    ["FiatTokenV2: authorization is expired", "invalid_exact_evm_payload_authorization_valid_before"],
    [
      "execution reverted: authorization is not yet valid",
      "invalid_exact_evm_payload_authorization_valid_after",
    ],
    ["FiatTokenV2: authorization is used or canceled", "invalid_exact_evm_nonce_already_used"],
    ['reverted with custom error "AuthorizationUsedOrCanceled()"', "invalid_exact_evm_nonce_already_used"],
    ["ERC20: transfer amount exceeds balance", "invalid_exact_evm_insufficient_balance"],
    ["ERC20InsufficientBalance(0xabc, 0, 10000)", "invalid_exact_evm_insufficient_balance"],
    ["FiatTokenV2: invalid signature", "invalid_exact_evm_signature"],
    ["ECRecover: invalid signature 's' value", "invalid_exact_evm_signature"],
    ["ECDSAInvalidSignatureS(0x7fff…)", "invalid_exact_evm_signature"],
    ["nonce too low", "invalid_exact_evm_transaction_failed"],
  ])("maps %j to %s", (message, code) => {
    expect(errorCodeFromRevert(message)).toBe(code);
  });
});
