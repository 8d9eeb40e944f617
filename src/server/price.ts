/** A route's price: `"$0.001"` in dollars, or atomic units of the asset as a bigint or a decimal string. */
export type Price = `$${string}` | bigint | string;

const DOLLARS = /^\$(\d+)(?:\.(\d+))?$/;
const ATOMIC = /^\d+$/;

/**
 * The price in atomic units of an asset with `decimals` decimals, as the decimal string x402 puts in
 * `amount`. Dollars are converted by string arithmetic, never through a float: "$0.001" is exactly "1000"
 * for USDC. A dollar price finer than one atomic unit is refused rather than rounded, because the payer
 * would sign a different amount than the one the route owner wrote down.
 */
export function toAtomicAmount(price: Price, decimals: number): string {
  if (typeof price === "bigint") {
    if (price < 0n) throw new RangeError(`A price cannot be negative: ${price}`);
    return price.toString();
  }
  if (ATOMIC.test(price)) return BigInt(price).toString();
  const dollars = DOLLARS.exec(price);
  if (!dollars) {
    throw new RangeError(
      `A price is "$<dollars>" or a whole number of atomic units, not ${JSON.stringify(price)}`,
    );
  }
  const [, whole = "0", fraction = ""] = dollars;
  const significant = fraction.replace(/0+$/, "");
  if (significant.length > decimals) {
    throw new RangeError(`${price} is finer than one atomic unit of a ${decimals}-decimal asset`);
  }
  return (
    BigInt(whole) * 10n ** BigInt(decimals) +
    BigInt(significant.padEnd(decimals, "0") || "0")
  ).toString();
}
