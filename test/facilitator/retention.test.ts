import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Devnet, startDevnet } from "../../src/chain/index.ts";
import { ExactEvmScheme, type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import type { PaymentPayload, PaymentRequirements } from "../../src/protocol/index.ts";
import { postSettle, signPayment, usdcRequirements } from "../support/payments.ts";

let devnet: Devnet;
let scheme: ExactEvmScheme;
let facilitator: Facilitator;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 4 });
  scheme = new ExactEvmScheme({
    rpcUrl: devnet.rpcUrl,
    chainId: devnet.chainId,
    relayerKeys: [devnet.accounts[3]?.privateKey as Hex],
  });
  facilitator = await startFacilitator({ schemes: [scheme] });
});
afterAll(async () => {
  await facilitator?.stop();
  await devnet?.stop();
});

const settle = (paymentPayload: PaymentPayload, paymentRequirements: PaymentRequirements) =>
  postSettle(facilitator.url, paymentPayload, paymentRequirements);

describe("what the facilitator remembers of its settlements", () => {
  it("is one entry per authorization however often it is presented, none for a failure, none once expired", async () => {
    const [payer, payee, broke] = devnet.accounts;
    if (!payer || !payee || !broke) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 1_000n);
    // One window for all of them, so that the moment they expire is known to the second.
    const validBefore = Math.floor(Date.now() / 1000) + 120;
    const sign = (key: Hex) =>
      signPayment(key, requirements, { authorization: { validBefore: `${validBefore}` } });
    const payments = Array.from({ length: 20 }, () => sign(payer.privateKey));

    const first = await Promise.all(payments.map((p) => settle(p, requirements)));
    expect(first.every((s) => s.success && s.extra?.duplicate !== true)).toBe(true);
    // Each presented twice more, at once: repeats join the first settlement and add nothing.
    const repeats = await Promise.all([...payments, ...payments].map((p) => settle(p, requirements)));
    expect(repeats.every((s) => s.success && s.extra?.duplicate === true)).toBe(true);
    expect(repeats.map((s) => s.transaction)).toEqual([...first, ...first].map((s) => s.transaction));
    // More than the payer holds: sent, refused by the token, and forgotten so that it may be tried again.
    const tooMuch = usdcRequirements(payee.address, 10n ** 30n);
    const refused = await settle(signPayment(broke.privateKey, tooMuch), tooMuch);
    expect(refused.success).toBe(false);
    expect(scheme.remembered).toBe(payments.length);

    // Until the authorizations expire a repeat must still be answered with its settlement; then they go.
    scheme.forgetExpired(validBefore);
    expect(scheme.remembered).toBe(payments.length);
    scheme.forgetExpired(validBefore + 1);
    expect(scheme.remembered).toBe(0);
  });
});
