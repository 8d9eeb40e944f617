import { type IncomingMessage, request } from "node:http";
import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from "@x402/core/http";
import type { PaymentRequiredContext } from "@x402/core/types";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import {
  createSIWxClientExtension,
  createSIWxResourceServerExtension,
  declareSIWxExtension,
  encodeSIWxHeader,
  formatSIWEMessage,
  InMemorySIWxStorage,
  SIGN_IN_WITH_X,
  type SIWxExtension,
  type SIWxExtensionInfo,
  type SIWxPayload,
  wrapFetchWithSIWx,
} from "@x402/extensions/sign-in-with-x";
import { wrapFetchWithPayment } from "@x402/fetch";
import Fastify from "fastify";
import { type Hex, hashMessage } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import { BASE_NETWORK } from "../../src/chain/index.ts";
import {
  encodePaymentSignatureHeader,
  MalformedSiweError,
  SIWX_CHALLENGE_HEADER,
  siweDigest,
  siweMessage,
  toHex,
} from "../../src/protocol/index.ts";
import { type ResourceServerOptions, startResourceServer } from "../../src/server/index.ts";
import { SiwxSessions } from "../../src/server/siwx.ts";
import { devnetAccount } from "../support/accounts.ts";
import { signPayment } from "../support/payments.ts";
import { startDevnetAndFacilitator, usdcBalances } from "./harness.ts";

let stack: Awaited<ReturnType<typeof startDevnetAndFacilitator>>;
/** Our facilitator behind a proxy that counts the calls the resource server makes. */
let facilitator: { url: string; calls: { verify: number; settle: number } };
const proxy = Fastify();

beforeAll(async () => {
  stack = await startDevnetAndFacilitator();
  const calls = { verify: 0, settle: 0 };
  for (const path of ["verify", "settle"] as const) {
    proxy.post(`/${path}`, async (request, reply) => {
      calls[path] += 1;
      const response = await fetch(`${stack.facilitator.url}/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(request.body),
      });
      return reply
        .code(response.status)
        .type("application/json")
        .send(await response.text());
    });
  }
  await proxy.listen({ host: "127.0.0.1", port: 0 });
  const address = proxy.server.address();
  if (typeof address !== "object" || !address) throw new Error("no address");
  facilitator = { url: `http://127.0.0.1:${address.port}`, calls };
});
afterAll(async () => {
  await proxy.close();
  await stack?.stop();
});

const PRICE = 1000n;
const account = (index: number) => devnetAccount(stack.devnet, index);

/** Two session routes (one with a statement and an expiry) and one without sessions; handlers count calls. */
async function serve(options: Partial<ResourceServerOptions> = {}) {
  const payee = account(10).address;
  const served = { weather: 0, news: 0 };
  const server = await startResourceServer({
    facilitatorUrl: facilitator.url,
    routes: {
      "GET /weather": { price: PRICE, payTo: payee, sessions: true },
      "GET /news": {
        price: PRICE,
        payTo: payee,
        sessions: { statement: "Sign in to read the news", expirationSeconds: 60 },
      },
      "GET /plain": { price: PRICE, payTo: payee },
    },
    handlers: {
      "GET /weather": async () => {
        served.weather += 1;
        return { sunny: true };
      },
      "GET /news": async () => {
        served.news += 1;
        return { headline: "x402" };
      },
    },
    ...options,
  });
  onTestFinished(() => server.stop());
  return Object.assign(server, { served });
}

async function paymentRequiredOf(response: Response) {
  expect(response.status).toBe(402);
  return decodePaymentRequiredHeader(response.headers.get("payment-required") ?? "");
}

/** The `sign-in-with-x` challenge a 402 from `url` carries. */
async function challengeOf(url: string): Promise<SIWxExtension> {
  const extension = (await paymentRequiredOf(await fetch(url))).extensions?.[SIGN_IN_WITH_X];
  if (!extension) throw new Error(`no ${SIGN_IN_WITH_X} in the 402 of ${url}`);
  return extension as SIWxExtension;
}

/**
 * A SIGN-IN-WITH-X header built from the official pieces (`formatSIWEMessage`, viem's `signMessage`,
 * `encodeSIWxHeader`), so the server is tested against them rather than against our own message code.
 * `overrides` alter the payload before signing; `signedBy` signs with another key than the address's.
 */
async function proof(
  privateKey: Hex,
  info: SIWxExtensionInfo,
  overrides: Partial<SIWxPayload> = {},
  signedBy: Hex = privateKey,
): Promise<string> {
  const fields = {
    ...info,
    address: privateKeyToAccount(privateKey).address,
    chainId: BASE_NETWORK,
    type: "eip191" as const,
    ...overrides,
  };
  const message = formatSIWEMessage(fields, fields.address);
  const signature = await privateKeyToAccount(signedBy).signMessage({ message });
  return encodeSIWxHeader({ ...fields, signature });
}

/** Pays once for `url` the way any client does: read the 402, sign EIP-3009, send it. */
async function payFor(privateKey: Hex, url: string): Promise<Response> {
  const [requirements] = (await paymentRequiredOf(await fetch(url))).accepts;
  if (!requirements) throw new Error("no accepts");
  const response = await fetch(url, {
    headers: { "payment-signature": encodePaymentSignatureHeader(signPayment(privateKey, requirements)) },
  });
  expect(response.status).toBe(200);
  return response;
}

const withProof = (url: string, header: string, extra: Record<string, string> = {}) =>
  fetch(url, { headers: { "sign-in-with-x": header, ...extra } });

function nextChallenge(response: Response): SIWxExtensionInfo {
  const value = response.headers.get(SIWX_CHALLENGE_HEADER);
  if (!value) throw new Error(`no ${SIWX_CHALLENGE_HEADER} header`);
  return JSON.parse(Buffer.from(value, "base64").toString("utf8")).info;
}

describe("the 402 of a session route", () => {
  it("declares sign-in-with-x as @x402/extensions' server extension enriches it, with a fresh nonce each time", async () => {
    const server = await serve();
    const response = await fetch(`${server.url}/news?page=2`);
    const paymentRequired = await paymentRequiredOf(response);
    const ours = paymentRequired.extensions?.[SIGN_IN_WITH_X] as SIWxExtension;

    const official = createSIWxResourceServerExtension({
      storage: new InMemorySIWxStorage(),
      origin: server.url,
    });
    const declaration = declareSIWxExtension({
      statement: "Sign in to read the news",
      expirationSeconds: 60,
    })[SIGN_IN_WITH_X];
    const context: PaymentRequiredContext = {
      requirements: paymentRequired.accepts,
      resourceInfo: paymentRequired.resource,
      paymentRequiredResponse: paymentRequired,
    };
    const expected = (await official.enrichPaymentRequiredResponse?.(declaration, context)) as SIWxExtension;
    // The fields @x402/extensions itself lists as refreshed per response are compared by shape only.
    const dynamic = official.dynamicInfoFields ?? [];
    const strip = (info: SIWxExtensionInfo) =>
      Object.fromEntries(Object.entries(info).filter(([key]) => !dynamic.includes(key)));
    expect(dynamic).toEqual(["nonce", "issuedAt", "expirationTime"]);
    expect({ ...ours, info: strip(ours.info) }).toEqual({ ...expected, info: strip(expected.info) });
    expect(Object.keys(ours.info).sort()).toEqual(Object.keys(expected.info).sort());
    expect(ours.info).toMatchObject({
      domain: new URL(server.url).host,
      uri: `${server.url}/news?page=2`,
      resources: [`${server.url}/news?page=2`],
    });
    expect(ours.supportedChains).toEqual([{ chainId: BASE_NETWORK, type: "eip191" }]);
    expect(ours.info.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(Date.parse(ours.info.expirationTime ?? "") - Date.parse(ours.info.issuedAt)).toBe(60_000);

    const again = await challengeOf(`${server.url}/news?page=2`);
    expect(again.info.nonce).not.toBe(ours.info.nonce);
    expect((await paymentRequiredOf(await fetch(`${server.url}/plain`))).extensions).toEqual({});
  });

  it("names the configured public origin rather than the Host the request came with", async () => {
    const server = await serve({ sessions: { origin: "https://api.example.com" } });
    const { info } = await challengeOf(`${server.url}/weather`);
    expect(info).toMatchObject({ domain: "api.example.com", uri: "https://api.example.com/weather" });

    // A proof naming the host the client happened to use is for another site.
    const payer = account(0);
    await payFor(payer.privateKey, `${server.url}/weather`);
    const local = { ...info, domain: new URL(server.url).host, uri: `${server.url}/weather` };
    const response = await withProof(`${server.url}/weather`, await proof(payer.privateKey, local));
    expect((await paymentRequiredOf(response)).error).toBe("invalid_siwx_domain_mismatch");
    expect(server.served.weather).toBe(1);
  });

  it("refuses session settings it cannot honour", async () => {
    await expect(serve({ sessions: { origin: "https://api.example.com/v1" } })).rejects.toThrow(/origin/);
    await expect(
      startResourceServer({
        facilitatorUrl: facilitator.url,
        routes: {
          "GET /x": { price: PRICE, payTo: account(10).address, sessions: { expirationSeconds: 0 } },
        },
      }),
    ).rejects.toThrow(/expirationSeconds/);
  });
});

describe("sessions on our server", () => {
  it("after one settled payment, proofs are served with no payment, no facilitator call and no chain work", async () => {
    const server = await serve();
    const payer = account(1);
    const payee = account(10);
    const url = `${server.url}/weather`;
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);
    const calls = { ...facilitator.calls };

    const paid = await payFor(payer.privateKey, url);
    expect(decodePaymentResponseHeader(paid.headers.get("payment-response") ?? "").success).toBe(true);
    expect(facilitator.calls).toEqual({ verify: calls.verify + 1, settle: calls.settle + 1 });
    const block = await stack.devnet.client.getBlockNumber({ cacheTime: 0 });

    // Each response hands out the next challenge; a fresh 402 works as well.
    let info = nextChallenge(paid);
    for (let i = 0; i < 5; i++) {
      const response = await withProof(url, await proof(payer.privateKey, info));
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ sunny: true });
      expect(response.headers.get("payment-response")).toBeNull();
      expect(response.headers.get("cache-control")).toContain("private");
      info = nextChallenge(response);
    }
    const fromA402 = (await challengeOf(url)).info;
    expect((await withProof(url, await proof(payer.privateKey, fromA402))).status).toBe(200);

    expect(server.served.weather).toBe(7);
    expect(facilitator.calls).toEqual({ verify: calls.verify + 1, settle: calls.settle + 1 });
    expect(await stack.devnet.client.getBlockNumber({ cacheTime: 0 })).toBe(block);
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);
  });

  it("grants a path only to who paid for that path", async () => {
    const server = await serve();
    const payer = account(2);
    await payFor(payer.privateKey, `${server.url}/weather`);
    // A valid proof for /news from the payer of /weather is a customer who has not paid: pay first.
    const response = await withProof(
      `${server.url}/news`,
      await proof(payer.privateKey, (await challengeOf(`${server.url}/news`)).info),
    );
    const paymentRequired = await paymentRequiredOf(response);
    expect(paymentRequired.error).toBe("Payment required");
    expect(paymentRequired.extensions?.[SIGN_IN_WITH_X]).toBeDefined();
    expect(server.served.news).toBe(0);
  });

  it.each<{
    name: string;
    code: string;
    forge: (ctx: { payer: Hex; other: Hex; info: SIWxExtensionInfo; url: string }) => Promise<string>;
  }>([
    {
      name: "signed by another wallet",
      code: "invalid_siwx_signature",
      forge: ({ payer, other, info }) => proof(payer, info, {}, other),
    },
    {
      name: "expired",
      code: "invalid_siwx_expired",
      forge: ({ payer, info }) =>
        proof(payer, info, { expirationTime: new Date(Date.now() - 1000).toISOString() }),
    },
    {
      name: "issued more than 5 minutes ago",
      code: "invalid_siwx_issued_at_too_old",
      forge: ({ payer, info }) =>
        proof(payer, info, { issuedAt: new Date(Date.now() - 6 * 60_000).toISOString() }),
    },
    {
      name: "issued in the future",
      code: "invalid_siwx_issued_at_in_future",
      forge: ({ payer, info }) =>
        proof(payer, info, { issuedAt: new Date(Date.now() + 60_000).toISOString() }),
    },
    {
      name: "not yet valid",
      code: "invalid_siwx_not_yet_valid",
      forge: ({ payer, info }) =>
        proof(payer, info, { notBefore: new Date(Date.now() + 60_000).toISOString() }),
    },
    {
      name: "for another domain",
      code: "invalid_siwx_domain_mismatch",
      forge: ({ payer, info }) => proof(payer, info, { domain: "evil.example" }),
    },
    {
      name: "for another origin",
      code: "invalid_siwx_uri_mismatch",
      forge: ({ payer, info }) => proof(payer, info, { uri: "https://evil.example/weather" }),
    },
    {
      name: "for another path of the same server",
      code: "invalid_siwx_uri_mismatch",
      forge: ({ payer, info, url }) => proof(payer, info, { uri: `${new URL(url).origin}/news` }),
    },
    {
      name: "with a nonce the server never issued",
      code: "invalid_siwx_nonce",
      forge: ({ payer, info }) => proof(payer, info, { nonce: "0123456789abcdef0123456789abcdef" }),
    },
    {
      name: "with the server's times altered",
      code: "invalid_siwx_nonce",
      forge: ({ payer, info }) =>
        proof(payer, info, { issuedAt: new Date(Date.parse(info.issuedAt) - 1).toISOString() }),
    },
    {
      name: "for another chain",
      code: "invalid_siwx_unsupported_chain",
      forge: ({ payer, info }) => proof(payer, info, { chainId: "eip155:1" }),
    },
    {
      name: "with a signature that is not 65 bytes",
      code: "invalid_siwx_malformed_signature",
      forge: async ({ payer, info }) => {
        const payload = JSON.parse(Buffer.from(await proof(payer, info), "base64").toString("utf8"));
        return encodeSIWxHeader({ ...payload, signature: `${payload.signature}00` });
      },
    },
  ])("refuses a proof $name with $code, a fresh challenge and no access", async ({ code, forge }) => {
    const server = await serve();
    const [payer, other] = [account(3).privateKey, account(4).privateKey];
    const url = `${server.url}/weather`;
    await payFor(payer, url);
    const info = (await challengeOf(url)).info;

    const response = await withProof(url, await forge({ payer, other, info, url }));
    const paymentRequired = await paymentRequiredOf(response);
    expect(paymentRequired.error).toBe(code);
    const fresh = paymentRequired.extensions?.[SIGN_IN_WITH_X] as SIWxExtension;
    expect(fresh.info.nonce).not.toBe(info.nonce);
    expect(server.served.weather).toBe(1);
    // The refusal's challenge is good for an honest proof.
    expect((await withProof(url, await proof(payer, fresh.info))).status).toBe(200);
  });

  it("accepts a proof once: a replay, even 10 at once, is refused as invalid_siwx_nonce", async () => {
    const server = await serve();
    const payer = account(5);
    const url = `${server.url}/weather`;
    const header = await proof(payer.privateKey, nextChallenge(await payFor(payer.privateKey, url)));

    const responses = await Promise.all(Array.from({ length: 10 }, () => withProof(url, header)));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(1);
    for (const response of responses.filter((r) => r.status !== 200)) {
      expect((await paymentRequiredOf(response)).error).toBe("invalid_siwx_nonce");
    }
    expect((await paymentRequiredOf(await withProof(url, header))).error).toBe("invalid_siwx_nonce");
    expect(server.served.weather).toBe(2);
  });

  it("answers a header that is not a SIWX payload with 400, and a refused proof never blocks a payment", async () => {
    const server = await serve();
    const payer = account(6);
    const url = `${server.url}/weather`;
    const malformed = await withProof(url, Buffer.from('{"domain":1}').toString("base64"));
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({
      error: "invalid_payload",
      details: { header: SIGN_IN_WITH_X },
    });

    const [requirements] = (await paymentRequiredOf(await fetch(url))).accepts;
    if (!requirements) throw new Error("no accepts");
    const payment = encodePaymentSignatureHeader(signPayment(payer.privateKey, requirements));
    const paid = await withProof(url, "%garbage%", { "payment-signature": payment });
    expect(paid.status).toBe(200);
    expect(decodePaymentResponseHeader(paid.headers.get("payment-response") ?? "").success).toBe(true);
  });

  it("answers a Host that makes no origin with the plain 402 rather than failing", async () => {
    const server = await serve();
    const { statusCode, headers } = await new Promise<IncomingMessage>((resolve, reject) => {
      const { hostname, port } = new URL(server.url);
      request({ hostname, port, path: "/weather", headers: { host: "a b" } }, (response) => {
        response.resume();
        response.on("end", () => resolve(response));
      })
        .on("error", reject)
        .end();
    });
    expect(statusCode).toBe(402);
    const paymentRequired = decodePaymentRequiredHeader(String(headers["payment-required"]));
    expect(paymentRequired.extensions).toEqual({});
  });

  it("ignores proofs on routes without sessions", async () => {
    const server = await serve();
    const payer = account(7);
    const url = `${server.url}/plain`;
    await payFor(payer.privateKey, url);
    const info = { ...(await challengeOf(`${server.url}/weather`)).info, uri: url, resources: [url] };
    const response = await withProof(url, await proof(payer.privateKey, info));
    expect((await paymentRequiredOf(response)).error).toBe("Payment required");
  });
});

describe("the official client extension on our server", () => {
  it("@x402/fetch with createSIWxClientExtension pays once, then gets in with SIWX alone", async () => {
    const server = await serve();
    const payer = account(8);
    const payee = account(10);
    const url = `${server.url}/news`;
    const signer = privateKeyToAccount(payer.privateKey);
    const client = new x402Client().registerExtension(createSIWxClientExtension({ signers: [signer] }));
    registerExactEvmScheme(client, { signer });
    const officialFetch = wrapFetchWithPayment(fetch, client);
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const first = await officialFetch(url);
    expect(first.status).toBe(200);
    expect(decodePaymentResponseHeader(first.headers.get("payment-response") ?? "").success).toBe(true);
    const settles = facilitator.calls.settle;

    for (let i = 0; i < 3; i++) {
      const again = await officialFetch(url);
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual({ headline: "x402" });
      expect(again.headers.get("payment-response")).toBeNull();
    }
    // wrapFetchWithSIWx, the extension's own fetch wrapper, gets in too.
    const viaWrapper = await wrapFetchWithSIWx(fetch, signer)(url);
    expect(viaWrapper.status).toBe(200);

    expect(server.served.news).toBe(5);
    expect(facilitator.calls.settle).toBe(settles);
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);
  });
});

describe("SiwxSessions storage", () => {
  const payer = () => account(9).privateKey;
  const resource = new URL("http://127.0.0.1:4021/weather");
  afterEach(() => {
    vi.useRealTimers();
  });

  it("forgets the least recently paid pair past maxPayers", () => {
    const sessions = new SiwxSessions(BASE_NETWORK, { maxPayers: 2 });
    sessions.recordPayment("/a", "0xAA");
    sessions.recordPayment("/b", "0xaa");
    sessions.recordPayment("/a", "0xaa");
    sessions.recordPayment("/c", "0xaa");
    expect(["/a", "/b", "/c"].map((path) => sessions.hasPaid(path, "0xAa"))).toEqual([true, false, true]);
  });

  it("past maxUsedNonces, forgets the oldest used nonce and refuses every nonce issued no later", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-01-01T00:00:00.000Z"));
    const sessions = new SiwxSessions(BASE_NETWORK, { maxUsedNonces: 2 });
    sessions.recordPayment("/weather", privateKeyToAccount(payer()).address);
    const issue = () => {
      const challenge = sessions.challenge(resource, {});
      vi.advanceTimersByTime(1);
      return challenge.info;
    };
    const verify = async (info: SIWxExtensionInfo) => {
      const verdict = await sessions.verify(await proof(payer(), info), resource);
      return verdict.kind === "refused" ? verdict.code : verdict.kind;
    };
    const [early, first, second, third] = [issue(), issue(), issue(), issue()];
    expect(await verify(first)).toBe("granted");
    expect(await verify(second)).toBe("granted");
    expect(await verify(third)).toBe("granted");
    // `first` was forgotten to stay within 2: it, and `early`, unused but issued before it, are refused.
    expect(await verify(first)).toBe("invalid_siwx_nonce");
    expect(await verify(early)).toBe("invalid_siwx_nonce");
    expect(await verify(second)).toBe("invalid_siwx_nonce");
    expect(await verify(issue())).toBe("granted");
  });

  it("drops used nonces once they are too old to pass validation anyway", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-01-01T00:00:00.000Z"));
    const sessions = new SiwxSessions(BASE_NETWORK);
    sessions.recordPayment("/weather", privateKeyToAccount(payer()).address);
    const use = async () => {
      const info = sessions.challenge(resource, {}).info;
      expect((await sessions.verify(await proof(payer(), info), resource)).kind).toBe("granted");
    };
    await use();
    await use();
    await use();
    expect(sessions.usedNonces).toBe(3);
    vi.advanceTimersByTime(5 * 60_000 + 1);
    await use();
    expect(sessions.usedNonces).toBe(1);
  });
});

describe("the SIWE message", () => {
  const base = {
    domain: "api.example.com:8443",
    address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    uri: "https://api.example.com:8443/weather?city=Lisbon",
    version: "1",
    chainId: BASE_NETWORK,
    type: "eip191" as const,
    nonce: "0123456789abcdef0123456789abcdef",
    issuedAt: "2026-01-01T00:00:00.000Z",
  };

  it.each<[string, Partial<SIWxPayload>]>([
    ["minimal", {}],
    [
      "with every optional field",
      {
        statement: "Sign in to read",
        expirationTime: "2026-01-01T00:05:00.000Z",
        notBefore: "2026-01-01T00:00:01.000Z",
        requestId: "req-1",
        resources: ["https://api.example.com:8443/weather", "ipfs://bafy"],
      },
    ],
    ["with a lowercase address", { address: base.address.toLowerCase() }],
    ["with an empty statement and no resources", { statement: "", resources: [] }],
    ["on another chain", { chainId: "eip155:1" }],
  ])("is formatSIWEMessage's, byte for byte: %s", (_, overrides) => {
    const fields = { ...base, ...overrides };
    expect(siweMessage(fields)).toBe(formatSIWEMessage(fields, fields.address));
  });

  it("hashes as viem's hashMessage, and refuses fields that would break its lines", () => {
    const message = siweMessage(base);
    expect(toHex(siweDigest(message))).toBe(hashMessage(message));
    expect(toHex(siweDigest("héllo ✓"))).toBe(hashMessage("héllo ✓"));
    expect(() => siweMessage({ ...base, statement: "a\nURI: https://evil.example" })).toThrow(
      MalformedSiweError,
    );
    expect(() => siweMessage({ ...base, resources: ["x\r\ny"] })).toThrow(MalformedSiweError);
    expect(() => siweMessage({ ...base, address: "0xF39FD6E51AAD88F6F4CE6AB8827279CFFFB92266x" })).toThrow(
      MalformedSiweError,
    );
  });
});
