import type { Address, Hex } from "viem";
import { describe, expect, it } from "vitest";
import type { PaymentRecord, SignedPayment } from "../../src/agents/ledger.ts";
import { PaymentBook } from "../../src/agents/payment-book.ts";

const PAYEE: Address = "0x00000000000000000000000000000000000b0b01";
const ASSET: Address = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const hex32 = (digit: string) => `0x${digit.repeat(64)}` as Hex;

const signed = (overrides: Partial<SignedPayment> = {}): SignedPayment => ({
  path: "exact/eip3009",
  url: "http://127.0.0.1:4021/weather",
  resourceKey: "http://127.0.0.1:4021/weather",
  x402Version: 2,
  amount: 1_000n,
  asset: ASSET,
  network: "eip155:8453",
  payTo: PAYEE,
  nonce: hex32("1"),
  validBefore: 1_900_000_000n,
  ...overrides,
});

describe("an agent's payment book", () => {
  it("gives back every payment as it was recorded, whatever fits its compact records and whatever does not", () => {
    const book = new PaymentBook();
    const payments: PaymentRecord[] = [
      { ...signed(), transaction: hex32("a"), confirmedBy: "server", at: 1_700_000_000_123 },
      { ...signed({ nonce: hex32("2") }), confirmedBy: "server", at: 1_700_000_000_124 },
      { ...signed({ nonce: hex32("3"), amount: 2_000n }), confirmedBy: "chain", at: 1_700_000_000_125 },
      // The same resource and price by another path: interned apart, so each keeps its path.
      {
        ...signed({ nonce: hex32("c"), path: "upto/permit2" }),
        confirmedBy: "server",
        at: 1_700_000_000_126,
      },
      {
        ...signed({ nonce: hex32("4"), url: "http://127.0.0.1:4021/other", x402Version: 1 }),
        transaction: hex32("b"),
        confirmedBy: "server",
        at: 1,
      },
      // Spellings the records do not hold are kept as they came: a server's capitals, a hostile validBefore.
      { ...signed({ nonce: hex32("5") }), transaction: hex32("C"), confirmedBy: "server", at: 2 },
      { ...signed({ nonce: hex32("E"), validBefore: 2n ** 255n }), confirmedBy: "chain", at: 3 },
    ];
    for (const { transaction, confirmedBy, at, ...payment } of payments) {
      book.add(payment, transaction, confirmedBy, at);
    }
    expect(book.list()).toStrictEqual(payments);
  });

  it("keeps thousands of payments in order across its chunks", () => {
    const book = new PaymentBook();
    const nonce = (i: number) => `0x${i.toString(16).padStart(64, "0")}` as Hex;
    for (let i = 0; i < 5_000; i++) book.add(signed({ nonce: nonce(i) }), hex32("f"), "server", i);
    const list = book.list();
    expect(list).toHaveLength(5_000);
    expect(list.every((p, i) => p.nonce === nonce(i) && p.at === i)).toBe(true);
  });
});
