import type { FastifyReply } from "fastify";
import { toAtomicAmount } from "./price.ts";

/**
 * The response header a handler meters an `upto` payment with, as the official Express middleware reads it:
 * JSON `{"amount": …}`, read at settle time and never sent to the client.
 */
export const SETTLEMENT_OVERRIDES_HEADER = "settlement-overrides";

/**
 * What to charge instead of the route's price: atomic units (`"1000"`), a percentage of the signed maximum
 * (`"50%"`, at most two decimals, rounded down) or dollars (`"$0.05"`).
 */
export type SettlementOverrides = { amount: string };

/** Meters the payment of this response: call from a handler of an `upto` route before it answers. */
export function setSettlementOverrides(reply: FastifyReply, overrides: SettlementOverrides): void {
  reply.header(SETTLEMENT_OVERRIDES_HEADER, JSON.stringify(overrides));
}

const PERCENT = /^(\d{1,3})(?:\.(\d{1,2}))?%$/;

/**
 * The atomic amount a `Settlement-Overrides` header asks for, of a payment signed for at most `maximum`.
 * Throws a TypeError for a header that says nothing sensible: a handler's bug, which must not be guessed
 * at with someone else's money. An amount above the maximum is passed on, for the facilitator to refuse
 * with its own code (`invalid_upto_evm_payload_settlement_exceeds_amount`), as the official server does.
 */
export function meteredAmount(header: string, maximum: bigint, decimals: number): bigint {
  let amount: unknown;
  try {
    amount = (JSON.parse(header) as { amount?: unknown } | null)?.amount;
  } catch {
    amount = undefined;
  }
  if (typeof amount !== "string" && typeof amount !== "number") {
    throw new TypeError(`${SETTLEMENT_OVERRIDES_HEADER} ${JSON.stringify(header)} has no amount`);
  }
  const text = String(amount).trim();
  const percent = PERCENT.exec(text);
  if (percent) {
    const [, whole = "0", fraction = ""] = percent;
    const hundredths = BigInt(whole) * 100n + BigInt(fraction.padEnd(2, "0"));
    if (hundredths > 10_000n) throw new TypeError(`${SETTLEMENT_OVERRIDES_HEADER}: ${text} is over 100%`);
    return (maximum * hundredths) / 10_000n;
  }
  try {
    return BigInt(toAtomicAmount(text, decimals));
  } catch (error) {
    throw new TypeError(`${SETTLEMENT_OVERRIDES_HEADER}: ${(error as Error).message}`);
  }
}
