import Fastify, { type FastifyInstance } from "fastify";
import { describe, expect, it } from "vitest";
import { toAtomicAmount, x402Paywall } from "../../src/server/index.ts";

const PAYEE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("toAtomicAmount", () => {
  it("converts dollars to atomic units by string arithmetic", () => {
    expect(toAtomicAmount("$0.001", 6)).toBe("1000");
    expect(toAtomicAmount("$0.01", 6)).toBe("10000");
    // 0.07 and 1.1 have no exact binary float; a float conversion gives 70000.00000000001 and 1100000.0000000002.
    expect(toAtomicAmount("$0.07", 6)).toBe("70000");
    expect(toAtomicAmount("$1.1", 6)).toBe("1100000");
    expect(toAtomicAmount("$12", 6)).toBe("12000000");
    expect(toAtomicAmount("$0.000001", 6)).toBe("1");
    expect(toAtomicAmount("$0.0000010", 6)).toBe("1");
    expect(toAtomicAmount("$123456789.123456", 6)).toBe("123456789123456");
  });

  it("takes bigints and digit strings as atomic units", () => {
    expect(toAtomicAmount(1234n, 6)).toBe("1234");
    expect(toAtomicAmount("1234", 6)).toBe("1234");
    expect(toAtomicAmount("007", 6)).toBe("7");
  });

  it("refuses what it cannot represent exactly", () => {
    expect(() => toAtomicAmount("$0.0000001", 6)).toThrow(/finer than one atomic unit/);
    expect(() => toAtomicAmount("0.5", 6)).toThrow(RangeError);
    expect(() => toAtomicAmount("$-1", 6)).toThrow(RangeError);
    expect(() => toAtomicAmount("$1e3", 6)).toThrow(RangeError);
    expect(() => toAtomicAmount(-1n, 6)).toThrow(RangeError);
  });
});

describe("x402Paywall configuration", () => {
  const register = async (
    routes: Parameters<typeof x402Paywall>[1]["routes"],
    addRoutes: (app: FastifyInstance) => void,
  ) => {
    const app = Fastify();
    try {
      await app.register(x402Paywall, { facilitatorUrl: "http://127.0.0.1:9", routes });
      addRoutes(app);
      await app.ready();
    } finally {
      await app.close();
    }
  };

  it("refuses to start when a priced route was never registered", async () => {
    await expect(
      register({ "GET /wether": { price: "$0.001", payTo: PAYEE } }, (app) =>
        app.get("/weather", async () => ({})),
      ),
    ).rejects.toThrow("priced routes not registered: GET /wether");
  });

  it("starts when every priced route exists, wherever it was registered", async () => {
    await expect(
      register({ "GET /api/weather": { price: "$0.001", payTo: PAYEE } }, (app) =>
        app.register(async (api: FastifyInstance) => api.get("/weather", async () => ({})), {
          prefix: "/api",
        }),
      ),
    ).resolves.toBeUndefined();
  });

  it("rejects route keys, payees and timeouts it cannot use", async () => {
    await expect(register({ "/weather": { price: "$0.001", payTo: PAYEE } }, () => {})).rejects.toThrow(
      'is not "METHOD /path"',
    );
    await expect(
      register({ "GET /weather": { price: "$0.001", payTo: "0x1234" } }, () => {}),
    ).rejects.toThrow(/Address "0x1234" is invalid/);
    await expect(
      register({ "GET /weather": { price: "$0.001", payTo: PAYEE, maxTimeoutSeconds: 0 } }, () => {}),
    ).rejects.toThrow(/maxTimeoutSeconds/);
  });
});
