/**
 * `batch-settlement`'s steady state: a paid request on a channel already funded, each with a new
 * cumulative voucher, which the server checks and books itself (no facilitator call, no chain work).
 * Ours (our fastify paywall) beside the official server (`@x402/express` + `x402ResourceServer` + the
 * official `BatchSettlementEvmScheme` server), each in its own process in front of its own facilitator on
 * its own devnet, as bench/e2e.ts starts them for `/batch-settlement/evm/eip3009`.
 *
 * Per server, one channel is opened by our agent with a deposit covering every voucher to come, then the
 * vouchers are signed ahead (cumulative: the k-th claims the charge so far plus k prices), so the timed loop
 * does nothing but send them: one connection, one request at a time, from request to full response on
 * loopback. Neither server reports its own total in `Server-Timing` (ours times only facilitator calls, of
 * which there are none here), so this is the server's time plus one loopback round trip of undici, the
 * same for both. The two take turns in chunks, so a neighbour's load on this shared machine falls on both
 * alike, and each facilitator's request counter is read before and after to show that no voucher reached it.
 */
import { type Dispatcher, Pool } from "undici";
import type { Hex } from "viem";
import { createAgent } from "../src/agents/index.ts";
import {
  type ChannelConfig,
  decodePaymentRequiredHeader,
  encodePaymentSignatureHeader,
  PAYMENT_REQUIRED_HEADER,
  PAYMENT_RESPONSE_HEADER,
  PAYMENT_SIGNATURE_HEADER,
  type PaymentRequirements,
  signDigest,
  voucherDigest,
} from "../src/protocol/index.ts";
import { BATCH_EIP3009_PATH } from "../test/support/official-server.ts";
import { SequentialClient, type Stack, startStack } from "./e2e.ts";
import { benchArgs, isMain, log, type Results, round, sideBySide, table } from "./lib/report.ts";

export type BatchOptions = { quick: boolean };

/** A third party's figure for the steady-state voucher of a Rust implementation (from the issue). */
const RUST_REFERENCE_P99_MS = 0.39;

/** Requests per turn when the two runs alternate. */
const CHUNK = 100;

/** A voucher answer slower than this is a hung server, not a measurement: the request fails. */
const REQUEST_TIMEOUT_MS = 10_000;

type Impl = "ours" | "official";

/** The facilitator's `/verify` and `/settle` answers so far, from its Prometheus counter. */
async function facilitatorRequests(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("x402_facilitator_requests_total{")) total += Number(line.split(" ").at(-1));
  }
  return total;
}

/**
 * Opens one channel on `stack`'s server with a deposit covering `count` more payments (our agent, whose
 * policy is widened to allow it), and signs `count` vouchers on it ahead: the PAYMENT-SIGNATURE headers
 * the timed loop sends, in order.
 */
async function presignedVouchers(stack: Stack, count: number): Promise<string[]> {
  const url = `${stack.server.info.url}${BATCH_EIP3009_PATH}`;
  const payer = stack.bench.payers[0];
  if (!payer) throw new Error("no payer");
  const probe = await fetch(url);
  const header = probe.headers.get(PAYMENT_REQUIRED_HEADER);
  if (probe.status !== 402 || !header) throw new Error(`${url}: no 402 (status ${probe.status})`);
  const challenge = decodePaymentRequiredHeader(header);
  const requirements = challenge.accepts.find((a) => a.scheme === "batch-settlement") as
    | PaymentRequirements
    | undefined;
  if (!requirements) throw new Error(`${url}: the 402 offers no batch-settlement`);
  const price = BigInt(requirements.amount);

  // The first payment is a deposit for it and `count` vouchers more, with a margin: a voucher may not
  // claim beyond the channel's balance.
  const multiplier = count + 10;
  const dispatcher = new Pool(stack.server.info.url, { connections: 1 });
  try {
    const agent = createAgent({
      privateKey: payer.privateKey,
      sessions: false,
      dispatcher,
      policy: { depositMultiplier: multiplier, maxDeposit: BigInt(multiplier) * price },
    });
    const opened = await agent.request(url);
    if (opened.outcome !== "paid") {
      throw new Error(`${url}: the deposit failed (${opened.outcome} ${opened.errorCode ?? ""})`);
    }
    const [channel] = agent.channels;
    if (!channel || channel.balance < channel.charged + BigInt(count) * price) {
      throw new Error(`${url}: the channel was not funded for ${count} vouchers`);
    }
    const config: ChannelConfig = channel.config;
    const chainId = stack.bench.devnet.chainId;
    return Array.from({ length: count }, (_, i) => {
      const max = channel.charged + BigInt(i + 1) * price;
      const signature: Hex = signDigest(payer.privateKey, voucherDigest(chainId, channel.channelId, max));
      return encodePaymentSignatureHeader({
        x402Version: 2,
        ...(challenge.resource ? { resource: challenge.resource } : {}),
        accepted: requirements,
        payload: {
          type: "voucher",
          channelConfig: config,
          voucher: { channelId: channel.channelId, maxClaimableAmount: `${max}`, signature },
        },
      });
    });
  } finally {
    await dispatcher.close();
  }
}

/** Sends the pre-signed vouchers in order on one kept-alive connection; a 200 with a receipt is paid. */
function voucherClient(impl: Impl, stack: Stack, headers: readonly string[]): SequentialClient {
  const pool = new Pool(stack.server.info.url, {
    connections: 1,
    pipelining: 1,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  let next = 0;
  return new SequentialClient(
    impl,
    async () => {
      const header = headers[next++];
      if (!header) return { outcome: "failed", detail: "out of vouchers", timings: {} };
      const started = performance.now();
      let response: Dispatcher.ResponseData;
      let body: string;
      try {
        response = await pool.request({
          method: "GET",
          path: BATCH_EIP3009_PATH,
          headers: { [PAYMENT_SIGNATURE_HEADER]: header },
        });
        body = await response.body.text();
      } catch (error) {
        return {
          outcome: "failed",
          detail: error instanceof Error ? error.message : String(error),
          timings: {},
        };
      }
      const e2e = performance.now() - started;
      const paid = response.statusCode === 200 && response.headers[PAYMENT_RESPONSE_HEADER.toLowerCase()];
      return paid
        ? { outcome: "paid", timings: { e2e } }
        : {
            outcome: "failed",
            detail: `status ${response.statusCode}: ${body.slice(0, 200)}`,
            timings: { e2e },
          };
    },
    () => pool.close(),
  );
}

export async function benchBatch(options: BatchOptions): Promise<Results> {
  const warmUp = options.quick ? 200 : 500;
  const requests = options.quick ? 1_000 : 5_000;
  // The turns stop here even if a loaded machine makes them slow: the figure is then over fewer requests.
  const budgetMs = options.quick ? 30_000 : 120_000;
  const stacks: Stack[] = [];
  const clients: SequentialClient[] = [];
  try {
    for (const impl of ["ours", "official"] as const) {
      const stack = await startStack(2, 1, impl, "batch");
      stacks.push(stack);
      clients.push(voucherClient(impl, stack, await presignedVouchers(stack, warmUp + requests)));
    }
    const [ours, official] = clients as [SequentialClient, SequentialClient];
    log(
      `batch: steady-state vouchers, one connection, ${requests} each after ${warmUp}, in turns of ${CHUNK}`,
    );
    await ours.warmUp(warmUp);
    await official.warmUp(warmUp);
    const before = await Promise.all(stacks.map((s) => facilitatorRequests(s.facilitator.info.url)));
    const deadline = performance.now() + budgetMs;
    let done = 0;
    while (done < requests && performance.now() < deadline) {
      const count = Math.min(CHUNK, requests - done);
      await ours.run(count);
      await official.run(count);
      done += count;
    }
    const after = await Promise.all(stacks.map((s) => facilitatorRequests(s.facilitator.info.url)));
    const calls = after.map((n, i) => n - (before[i] ?? 0));
    const mine = ours.result();
    const theirs = official.result();
    const [m, t] = [mine.latency.e2e, theirs.latency.e2e];
    if (!m || !t) throw new Error("batch: no voucher was timed");
    log(
      `batch voucher: ours p50 ${m.p50} ms, p99 ${m.p99} ms, ${round(mine.rate)}/s, ${mine.failures} failed; ` +
        `official p50 ${t.p50} ms, p99 ${t.p99} ms, ${round(theirs.rate)}/s, ${theirs.failures} failed` +
        `${theirs.failed.length ? ` (${theirs.failed.join("; ")})` : ""}; facilitator requests ${calls.join(", ")}`,
    );
    if (mine.failures > 0 || theirs.failures > 0) {
      throw new Error(`batch: vouchers refused (${[...mine.failed, ...theirs.failed].join("; ")})`);
    }
    return {
      "batch/voucher": {
        ...sideBySide(m.p99, t.p99, "ms", "lower"),
        p50: m.p50,
        p99: m.p99,
        notes:
          `p99 of a steady-state voucher request (channel funded, a new cumulative voucher each, no facilitator ` +
          `call: facilitator requests during the run ours ${calls[0]}, official ${calls[1]}), request to full ` +
          `response on one loopback keep-alive connection, sequential, ${done} each after ${warmUp}, in ` +
          `turns of ${CHUNK}; ratio = official / ours (lower is better, so > 1 means ours is faster); ` +
          `official = @x402/express + x402ResourceServer + BatchSettlementEvmScheme (in-memory channels), ` +
          `p50 ${t.p50} ms; one connection: ours ${round(mine.rate)} req/s, official ${round(theirs.rate)} ` +
          `req/s; reference: a third party measured ${RUST_REFERENCE_P99_MS} ms p99 for a Rust ` +
          "implementation's steady-state voucher (other machine, server-side)",
      },
    };
  } finally {
    for (const client of clients) await client.close();
    for (const stack of stacks) await stack.stop();
  }
}

if (isMain(import.meta.url)) {
  const results = await benchBatch(benchArgs());
  console.log(table(results));
}
