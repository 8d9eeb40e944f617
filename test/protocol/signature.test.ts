import { secp256k1 } from "@noble/curves/secp256k1";
import {
  bytesToHex,
  type Hex,
  hexToBytes,
  parseSignature,
  recoverTypedDataAddress,
  recoverAddress as viemRecoverAddress,
} from "viem";
import { privateKeyToAccount, sign } from "viem/accounts";
import { describe, expect, it } from "vitest";
import {
  addressFromPrivateKey,
  eip712DomainSeparator,
  InvalidSignatureError,
  recoverAddress,
  signatureBackend,
  signDigest,
  signTransferAuthorization,
  splitSignature,
  transferAuthorizationDigest,
  transferWithAuthorizationPrimaryType,
  transferWithAuthorizationTypes,
  typedDataMessage,
} from "../../src/protocol/index.ts";
import { jsBackend, nativeBackend } from "../../src/protocol/secp256k1.ts";
import { BASE_USDC, randomAuthorization, randomHex } from "./helpers.ts";

const N = secp256k1.CURVE.n;

function randomKey(): Hex {
  return bytesToHex(secp256k1.utils.randomPrivateKey());
}

/** The same signature with s → n − s and the recovery bit flipped: valid for ecrecover, but high-s. */
function malleate(signature: Hex): Hex {
  const { r, s, yParity } = parseSignature(signature);
  const highS = (N - BigInt(s)).toString(16).padStart(64, "0");
  return `${r}${highS}${yParity === 0 ? "1c" : "1b"}`;
}

/** The smallest r that is not the x coordinate of a curve point: no key recovers from it. */
function nonPointR(): bigint {
  for (let r = 1n; ; r++) {
    try {
      secp256k1.ProjectivePoint.fromHex(`02${r.toString(16).padStart(64, "0")}`);
    } catch {
      return r;
    }
  }
}

function withV(signature: Hex, v: number): Hex {
  return `${signature.slice(0, 130)}${v.toString(16).padStart(2, "0")}` as Hex;
}

describe("backend selection", () => {
  it.runIf(process.platform === "linux" && process.arch === "x64")(
    "loads the native addon on linux-x64",
    () => {
      expect(nativeBackend).toBeDefined();
      expect(signatureBackend).toBe("native");
    },
  );
});

describe("signing", () => {
  it("signDigest equals viem sign (RFC 6979, low s, v = 27/28)", async () => {
    for (let i = 0; i < 100; i++) {
      const key = randomKey();
      const digest = randomHex(32);
      expect(signDigest(key, digest)).toBe(await sign({ hash: digest, privateKey: key, to: "hex" }));
    }
  });

  it("signTransferAuthorization equals viem signTypedData", async () => {
    for (let i = 0; i < 50; i++) {
      const key = randomKey();
      const authorization = randomAuthorization();
      const expected = await privateKeyToAccount(key).signTypedData({
        domain: BASE_USDC,
        types: transferWithAuthorizationTypes,
        primaryType: transferWithAuthorizationPrimaryType,
        message: typedDataMessage(authorization),
      });
      expect(signTransferAuthorization(key, BASE_USDC, authorization)).toBe(expected);
    }
  });

  it("takes the private key as bytes too, and leaves the caller's bytes alone", () => {
    const key = randomKey();
    const bytes = hexToBytes(key);
    const digest = randomHex(32);
    expect(signDigest(bytes, digest)).toBe(signDigest(key, digest));
    expect(bytesToHex(bytes)).toBe(key);
  });

  it("addressFromPrivateKey equals viem's account address, lowercased", () => {
    for (let i = 0; i < 50; i++) {
      const key = randomKey();
      expect(addressFromPrivateKey(key)).toBe(privateKeyToAccount(key).address.toLowerCase());
    }
  });

  it.each([
    ["zero", `0x${"00".repeat(32)}`],
    ["the curve order", `0x${N.toString(16)}`],
    ["31 bytes", randomHex(31)],
  ])("rejects a private key that is %s", (_, key) => {
    expect(() => signDigest(key as Hex, randomHex(32))).toThrow();
    expect(() => addressFromPrivateKey(key as Hex)).toThrow();
  });
});

describe("recovery", () => {
  it("recovers the signer of signDigest, lowercase", () => {
    for (let i = 0; i < 100; i++) {
      const key = randomKey();
      const digest = randomHex(32);
      expect(recoverAddress(digest, signDigest(key, digest))).toBe(
        privateKeyToAccount(key).address.toLowerCase(),
      );
    }
  });

  it("agrees with viem recoverTypedDataAddress on viem-made signatures", async () => {
    const separator = eip712DomainSeparator(BASE_USDC);
    for (let i = 0; i < 50; i++) {
      const account = privateKeyToAccount(randomKey());
      const authorization = { ...randomAuthorization(), from: account.address };
      const typedData = {
        domain: BASE_USDC,
        types: transferWithAuthorizationTypes,
        primaryType: transferWithAuthorizationPrimaryType,
        message: typedDataMessage(authorization),
      } as const;
      const signature = await account.signTypedData(typedData);
      const digest = transferAuthorizationDigest(separator, authorization);
      const expected = (await recoverTypedDataAddress({ ...typedData, signature })).toLowerCase();
      expect(recoverAddress(digest, signature)).toBe(expected);
      expect(recoverAddress(digest, hexToBytes(signature))).toBe(expected);
      expect(expected).toBe(account.address.toLowerCase());
    }
  });

  it("returns a different address for a different digest (no false positive)", () => {
    const key = randomKey();
    const signature = signDigest(key, randomHex(32));
    expect(recoverAddress(randomHex(32), signature)).not.toBe(addressFromPrivateKey(key));
  });

  it("accepts v as 0/1 as well as 27/28, like viem", () => {
    const key = randomKey();
    const digest = randomHex(32);
    const signature = signDigest(key, digest);
    const v = Number.parseInt(signature.slice(130), 16);
    expect(recoverAddress(digest, withV(signature, v - 27))).toBe(addressFromPrivateKey(key));
  });

  it("rejects high-s signatures, which viem (and so the reference facilitator's verify) accepts", async () => {
    const key = randomKey();
    const digest = randomHex(32);
    const highS = malleate(signDigest(key, digest));
    // Documents the official behaviour: viem recovers the same signer from the malleated twin…
    expect((await viemRecoverAddress({ hash: digest, signature: highS })).toLowerCase()).toBe(
      addressFromPrivateKey(key),
    );
    // …while USDC's ECRecover and OpenZeppelin's ECDSA revert on it, and so do we, up front.
    expect(() => recoverAddress(digest, highS)).toThrow(
      expect.objectContaining({ code: "invalid_exact_evm_signature", details: { reason: "high_s" } }),
    );
  });

  const signature = signDigest(randomKey(), randomHex(32));
  const rOfN = `0x${N.toString(16)}${signature.slice(66)}` as Hex;
  it.each([
    ["length", signature.slice(0, 130) as Hex],
    ["length", `${signature}00` as Hex],
    ["length", hexToBytes(signature).subarray(0, 64)],
    ["encoding", `0x${"zz".repeat(65)}` as Hex],
    ["encoding", `1x${signature.slice(2)}` as Hex],
    ["v", withV(signature, 29)],
    ["v", withV(signature, 2)],
    ["r_out_of_range", `0x${"00".repeat(32)}${signature.slice(66)}` as Hex],
    ["r_out_of_range", rOfN],
    ["s_out_of_range", `${signature.slice(0, 66)}${"00".repeat(32)}1b` as Hex],
  ])("rejects a signature with a bad %s", (reason, bad) => {
    expect(() => recoverAddress(randomHex(32), bad)).toThrow(InvalidSignatureError);
    expect(() => recoverAddress(randomHex(32), bad)).toThrow(
      expect.objectContaining({ details: { reason } }),
    );
  });

  it("reports an r that is no curve point's x as unrecoverable", () => {
    const bad = `0x${nonPointR().toString(16).padStart(64, "0")}${"11".repeat(32)}1b` as Hex;
    expect(() => recoverAddress(randomHex(32), bad)).toThrow(
      expect.objectContaining({ details: { reason: "unrecoverable" } }),
    );
  });
});

describe("splitSignature", () => {
  it("gives viem's r and s and a v of 27 or 28, also for a 0/1 v", () => {
    const signature = signDigest(randomKey(), randomHex(32));
    const viem = parseSignature(signature);
    const split = splitSignature(signature);
    expect(split).toEqual({ v: Number(viem.v), r: viem.r, s: viem.s });
    expect(splitSignature(withV(signature, split.v - 27))).toEqual(split);
  });

  it("rejects what recoverAddress rejects", () => {
    expect(() => splitSignature(malleate(signDigest(randomKey(), randomHex(32))))).toThrow(
      InvalidSignatureError,
    );
  });
});

describe.runIf(nativeBackend)("JS fallback agrees with the native addon", () => {
  const native = nativeBackend as NonNullable<typeof nativeBackend>;

  it("signs the same bytes and recovers the same key", () => {
    for (let i = 0; i < 100; i++) {
      const key = secp256k1.utils.randomPrivateKey();
      const digest = hexToBytes(randomHex(32));
      const a = native.sign(digest, key);
      const b = jsBackend.sign(digest, key);
      expect(bytesToHex(b.signature)).toBe(bytesToHex(a.signature));
      expect(b.recovery).toBe(a.recovery);
      expect(bytesToHex(jsBackend.recover(a.signature, a.recovery, digest))).toBe(
        bytesToHex(native.recover(a.signature, a.recovery, digest)),
      );
      expect(bytesToHex(jsBackend.publicKey(key))).toBe(bytesToHex(native.publicKey(key)));
    }
  });

  it("both throw on an unrecoverable signature", () => {
    const bad = hexToBytes(`0x${nonPointR().toString(16).padStart(64, "0")}${"11".repeat(32)}`);
    const digest = hexToBytes(randomHex(32));
    expect(() => native.recover(bad, 0, digest)).toThrow();
    expect(() => jsBackend.recover(bad, 0, digest)).toThrow();
  });
});
