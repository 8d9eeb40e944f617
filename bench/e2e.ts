/**
 * Paid requests end to end: the reference resource server (`GET /weather`, $0.001) in front of our
 * facilitator, on a devnet under the `instant` profile, each in its own process.
 * - one agent, sequential: 402, sign, paid request with verify and settle, 200; latency per paid request;
 * - saturated: autocannon with pre-signed PAYMENT-SIGNATURE headers, a fresh authorization per request.
 * Only 200 answers carrying a PAYMENT-RESPONSE receipt count as paid.
 */
import { Pool } from "undici";
import type { Hex } from "viem";
import { createAgent } from "../src/agents/index.ts";
import { RunMetrics } from "../src/load/index.ts";
import {
  authorizationFor,
  decodePaymentRequiredHeader,
  domainFromRequirements,
  encodePaymentSignatureHeader,
  PAYMENT_REQUIRED_HEADER,
  PAYMENT_RESPONSE_HEADER,
  PAYMENT_SIGNATURE_HEADER,
  type PaymentPayload,
  type PaymentRequirements,
  signTransferAuthorization,
} from "../src/protocol/index.ts";
import { type ChildServer, cpuMeter, startChild } from "./lib/child.ts";
import { type BenchDevnet, benchDevnet } from "./lib/devnet.ts";
import { saturate } from "./lib/load.ts";
import { benchArgs, isMain, log, type Results, round, table } from "./lib/report.ts";

export type E2eOptions = { quick: boolean; connections?: number };

const PATH = "/weather";

type Payer = { address: Hex; privateKey: Hex };

/** A signed payment for `requirements`, as the official client makes it (validAfter 0, fresh nonce). */
function pay(payer: Payer, requirements: PaymentRequirements): PaymentPayload {
  const authorization = authorizationFor(payer.address, requirements);
  const signature = signTransferAuthorization(
    payer.privateKey,
    domainFromRequirements(requirements),
    authorization,
  );
  return { x402Version: 2, accepted: requirements, payload: { signature, authorization } };
}

/**
 * One agent (src/agents' `createAgent`, native signing, the default policy) paying sequentially:
 * `agent.request()` asks, reads the 402, signs and asks again with PAYMENT-SIGNATURE. Sessions are off, so
 * every request is paid.
 */
async function sequentialAgent(url: string, payer: Payer, requests: number) {
  const dispatcher = new Pool(url, { connections: 1, pipelining: 1 });
  const agent = createAgent({ privateKey: payer.privateKey, sessions: false, dispatcher });
  const target = `${url}${PATH}`;
  let metrics = new RunMetrics();
  let failures = 0;
  const once = async () => {
    const result = await agent.request(target);
    if (result.outcome !== "paid") failures++;
    metrics.record(result);
  };
  // Warm-up: JIT and connections on every hop.
  for (let i = 0; i < 60; i++) await once();
  if (failures > 0)
    throw new Error(`the agent's warm-up payments failed (${JSON.stringify(metrics.errors)})`);
  metrics = new RunMetrics();
  const started = performance.now();
  for (let count = 0; count < requests; count++) await once();
  const elapsed = (performance.now() - started) / 1000;
  await dispatcher.close();
  return { rate: (requests - failures) / elapsed, failures, latency: metrics.latency() };
}

type Stack = {
  bench: BenchDevnet;
  facilitator: ChildServer<{ url: string; pid: number }>;
  server: ChildServer<{ url: string; pid: number }>;
  stop(): Promise<void>;
};

/**
 * A fresh devnet, facilitator and resource server for one phase. anvil's cost per block grows with its
 * state (every settlement adds a storage slot, and the state root is recomputed for each block), so no
 * phase inherits another's chain, and the payers are few (each signs many authorizations): a block takes
 * anvil about 1 ms with ten wallets, 1.5 ms with a hundred, 5 ms with a thousand.
 */
async function startStack(payers: number, relayers: number): Promise<Stack> {
  const bench = await benchDevnet({ payers, relayers });
  const facilitator = await startChild<{ url: string; pid: number }>("facilitator.ts", {
    impl: "ours",
    rpcUrl: bench.devnet.rpcUrl,
    chainId: bench.devnet.chainId,
    relayerKeys: bench.relayers.map((r) => r.privateKey),
  });
  const server = await startChild<{ url: string; pid: number }>("resource.ts", {
    facilitatorUrl: facilitator.info.url,
    payTo: bench.payee.address,
  });
  return {
    bench,
    facilitator,
    server,
    async stop() {
      await server.stop();
      await facilitator.stop();
      await bench.stop();
    },
  };
}

/**
 * One agent on the devnet `x402-devnet up` starts by default (ten wallets), a fixed number of paid
 * requests after a warm-up. The count is fixed because under automine every payment is a block, and anvil
 * takes about 2 µs longer to mine a block for every block already on the chain (8 ms for an empty block at
 * height 4,000): latency drifts up with the length of the run, not with load.
 */
async function sequentialPhase(requests: number) {
  const stack = await startStack(10, 1);
  try {
    const [agent] = stack.bench.payers;
    if (!agent) throw new Error("no payer");
    log(`e2e: one agent, sequential, ${requests} paid requests`);
    const result = await sequentialAgent(stack.server.info.url, agent, requests);
    const e2e = result.latency.e2e;
    log(
      `e2e sequential: ${round(result.rate)} paid/s, p50 ${e2e?.p50} ms, p99 ${e2e?.p99} ms ` +
        `(challenge p50 ${result.latency.challenge?.p50} ms, sign p50 ${result.latency.sign?.p50} ms, ` +
        `server-side verify p50 ${result.latency.verify?.p50} ms, settle p50 ${result.latency.settle?.p50} ms), ` +
        `${result.failures} failed`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}

async function saturatedPhase(seconds: number, connections: number) {
  const stack = await startStack(100, 4);
  const { bench, server, facilitator } = stack;
  try {
    log(`e2e: saturated, ${connections} connections`);
    const probe = await fetch(`${server.info.url}${PATH}`);
    const required = probe.headers.get(PAYMENT_REQUIRED_HEADER);
    if (probe.status !== 402 || !required) throw new Error("the server did not answer 402");
    const requirements = decodePaymentRequiredHeader(required).accepts[0];
    if (!requirements) throw new Error("402 without accepts");
    // Enough for 1,500 paid requests/s over the warm-up and the window.
    const count = Math.ceil(1_500 * (seconds + 1));
    const headers = Array.from({ length: count }, (_, i) =>
      encodePaymentSignatureHeader(pay(bench.payers[i % bench.payers.length] as Payer, requirements)),
    );
    let next = 0;
    const meter = cpuMeter({
      server: server.pid,
      facilitator: facilitator.pid,
      anvil: bench.anvilPid,
      load: process.pid,
    });
    const start = (await bench.devnet.status()).blockNumber;
    const metered = new Promise<void>((resolve) => setTimeout(() => void meter.start().then(resolve), 1_000));
    const result = await saturate({
      url: server.info.url,
      path: PATH,
      method: "GET",
      connections,
      warmupSeconds: 1,
      seconds,
      next: () => {
        const header = headers[next++];
        return header ? { headers: { [PAYMENT_SIGNATURE_HEADER]: header } } : undefined;
      },
      accept: (status, _body, headers) =>
        status === 200 &&
        Object.keys(headers).some((name) => name.toLowerCase() === PAYMENT_RESPONSE_HEADER.toLowerCase()),
    });
    await metered;
    const cores = await meter.stop();
    const end = (await bench.devnet.status()).blockNumber;
    log(
      `e2e saturated: ${round(result.rate)} paid/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ` +
        `${result.failed} failed, ${end - start} blocks (height ${end}), CPU cores ${JSON.stringify(cores)}`,
    );
    if (result.samples.length) log(`  e.g. ${result.samples[0]}`);
    return { ...result, blocks: end - start, height: end };
  } finally {
    await stack.stop();
  }
}

export async function benchE2e(options: E2eOptions): Promise<Results> {
  const seconds = options.quick ? 2 : 10;
  const connections = options.connections ?? 64;
  const requests = 500;
  const sequential = await sequentialPhase(requests);
  const saturated = await saturatedPhase(seconds, connections);
  const e2e = sequential.latency.e2e;
  return {
    "e2e/sequential": {
      ours: round(sequential.rate),
      unit: "paid/s",
      p50: e2e?.p50,
      p99: e2e?.p99,
      notes:
        `one agent, ${requests} paid requests on a fresh devnet (instant profile): 402 → sign → paid request ` +
        "(verify + settle) → 200; " +
        `server-side verify p50 ${sequential.latency.verify?.p50} ms, settle p50 ${sequential.latency.settle?.p50} ms`,
    },
    "e2e/saturated": {
      ours: round(saturated.rate),
      unit: "paid/s",
      p50: saturated.p50,
      p99: saturated.p99,
      notes:
        `${connections} connections, pre-signed payments, instant profile, 4 relayer keys; ` +
        `${saturated.failed} failed, ${saturated.blocks} blocks, end height ${saturated.height}`,
    },
  };
}

if (isMain(import.meta.url)) {
  const results = await benchE2e(benchArgs());
  console.log(table(results));
}
