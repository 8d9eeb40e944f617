/**
 * Paid requests end to end: the reference resource server (`GET /weather`, $0.001) in front of our
 * facilitator, on a devnet under the `instant` profile, each in its own process.
 * - one agent, sequential: 402, sign, paid request with verify and settle, 200; latency per paid request.
 *   The official stack takes turns with ours, on a devnet of its own: `@x402/fetch`'s wrapFetchWithPayment
 *   over an `x402Client` with the EVM exact scheme, `@x402/express`'s paymentMiddleware, and
 *   `x402Facilitator` + `@x402/evm` (bench/official-facilitator.ts), each in its own process;
 * - the same for each payment path beside it (exact by Permit2, upto, batch-settlement by EIP-3009
 *   deposits), on stacks of their own: the official server sells that path alone, ours every path;
 * - saturated: autocannon with pre-signed PAYMENT-SIGNATURE headers, a fresh authorization per request.
 *   Ours only: the official facilitator's one key takes each nonce from the node, so concurrent settles
 *   collide (see bench/settle.ts), and one at a time it is the sequential figure again.
 * Only 200 answers carrying a PAYMENT-RESPONSE receipt count as paid.
 */
import { x402Client } from "@x402/core/client";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { Pool } from "undici";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createAgent } from "../src/agents/index.ts";
import { approvePermit2, type Devnet, USDC_ADDRESS } from "../src/chain/index.ts";
import { RunMetrics, type Sample } from "../src/load/index.ts";
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
import { benchArgs, isMain, log, type Results, round, sideBySide, table } from "./lib/report.ts";

export type E2eOptions = { quick: boolean; connections?: number };

const PATH = "/weather";
const NETWORK = "eip155:8453";

/**
 * Which of the servers' payment paths a stack serves beside `/weather`: the Permit2 ones (payers approve
 * Permit2 first) or `batch-settlement` (the facilitators hold a receiver-authorizer key).
 */
export type PathKind = "permit2" | "batch";

/** The payment paths beside `/weather`, each with its own sequential figure. */
const PAYMENT_PATHS = [
  { path: "/exact/evm/permit2", key: "e2e/sequential-permit2", what: "exact by Permit2", kind: "permit2" },
  { path: "/upto/evm/permit2", key: "e2e/sequential-upto", what: "upto (metered)", kind: "permit2" },
  {
    path: "/batch-settlement/evm/eip3009",
    key: "e2e/sequential-batch",
    what: "batch-settlement (an EIP-3009 deposit about every tenth request, else a voucher)",
    kind: "batch",
  },
] as const;

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

/** A paid request's outcome and timings, and a reason to show when it failed. */
type Paid = Sample & { detail?: string };

/**
 * One client paying sequentially, timed over the chunks `run` is given: the ours and official runs
 * alternate in chunks, so a neighbour's load on this shared machine falls on both alike.
 */
export class SequentialClient {
  private metrics = new RunMetrics();
  private failures = 0;
  private readonly failed: string[] = [];
  private requests = 0;
  private elapsed = 0;

  constructor(
    readonly name: string,
    private readonly pay: () => Promise<Paid>,
    readonly close: () => Promise<void> = async () => {},
  ) {}

  private async once(): Promise<void> {
    const result = await this.pay();
    if (result.outcome !== "paid") {
      this.failures++;
      if (this.failed.length < 3) this.failed.push(result.detail ?? result.errorCode ?? result.outcome);
    }
    this.metrics.record(result);
  }

  /** JIT and connections on every hop; every warm-up payment must succeed. */
  async warmUp(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.once();
    if (this.failures > 0)
      throw new Error(`${this.name}: warm-up payments failed (${this.failed.join("; ")})`);
    this.metrics = new RunMetrics();
  }

  async run(count: number): Promise<void> {
    const started = performance.now();
    for (let i = 0; i < count; i++) await this.once();
    this.elapsed += performance.now() - started;
    this.requests += count;
  }

  result() {
    return {
      rate: (this.requests - this.failures) / (this.elapsed / 1000),
      failures: this.failures,
      failed: this.failed,
      latency: this.metrics.latency(),
    };
  }
}

/**
 * One agent (src/agents' `createAgent`, native signing, the default policy): `agent.request()` asks,
 * reads the 402, signs and asks again with PAYMENT-SIGNATURE. Sessions are off, so every request is paid.
 */
function ourAgent(url: string, payer: Payer, path = PATH): SequentialClient {
  const dispatcher = new Pool(url, { connections: 1, pipelining: 1 });
  const agent = createAgent({ privateKey: payer.privateKey, sessions: false, dispatcher });
  const target = `${url}${path}`;
  return new SequentialClient(
    "our agent",
    () => agent.request(target),
    () => dispatcher.close(),
  );
}

/**
 * The official client as its README writes it: `wrapFetchWithPayment(fetch, client)` with Node's fetch
 * (keep-alive) over an `x402Client` with the EVM exact scheme (and upto and batch-settlement, whose client
 * reads the chain through `chain` to recover a channel it has no record of). It exposes no per-phase
 * timings, so only the whole paid request is timed.
 */
function officialClient(url: string, payer: Payer, path = PATH, chain?: Devnet["client"]): SequentialClient {
  const signer = privateKeyToAccount(payer.privateKey);
  // All on the network itself: the client looks no further than the first registration naming it.
  const client = new x402Client()
    .register(NETWORK, new ExactEvmScheme(signer))
    .register(NETWORK, new UptoEvmScheme(signer))
    .register(NETWORK, new BatchSettlementEvmScheme(toClientEvmSigner(signer, chain)));
  const fetchWithPayment = wrapFetchWithPayment(fetch, client);
  const target = `${url}${path}`;
  return new SequentialClient("official client", async () => {
    const started = performance.now();
    const timed = (outcome: string, detail?: string): Paid => ({
      outcome,
      detail,
      timings: { e2e: performance.now() - started },
    });
    try {
      const response = await fetchWithPayment(target);
      await response.arrayBuffer();
      return response.status === 200 && response.headers.get(PAYMENT_RESPONSE_HEADER)
        ? timed("paid")
        : timed("failed", `status ${response.status}`);
    } catch (error) {
      return timed("failed", error instanceof Error ? error.message : String(error));
    }
  });
}

type Impl = "ours" | "official";

export type Stack = {
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
export async function startStack(
  payers: number,
  relayers: number,
  impl: Impl = "ours",
  paths?: PathKind,
): Promise<Stack> {
  // With the payment paths, three keys more: one settles the Permit2 paths, one sends the channels'
  // deposits and claims, and one (which never pays gas) is the channels' receiver authorizer. Our server
  // serves every path, so our facilitator takes them all whichever path is measured.
  const bench = await benchDevnet({ payers, relayers: relayers + (paths ? 3 : 0) });
  let facilitator: ChildServer<{ url: string; pid: number }> | undefined;
  let server: ChildServer<{ url: string; pid: number }>;
  try {
    const keys = bench.relayers.map((r) => r.privateKey);
    const [permit2Key, batchKey, authorizerKey] = keys.slice(relayers);
    const batch =
      batchKey && authorizerKey && (impl === "ours" || paths === "batch")
        ? { relayerKeys: [batchKey], receiverAuthorizerKey: authorizerKey }
        : undefined;
    if (paths === "permit2") await approvePermit2(bench.devnet.client, bench.payers, USDC_ADDRESS, false);
    facilitator = await startChild<{ url: string; pid: number }>("facilitator.ts", {
      impl,
      rpcUrl: bench.devnet.rpcUrl,
      chainId: bench.devnet.chainId,
      relayerKeys: keys.slice(0, relayers),
      ...(permit2Key && (impl === "ours" || paths === "permit2") ? { permit2Keys: [permit2Key] } : {}),
      ...(batch ? { batch } : {}),
    });
    server = await startChild<{ url: string; pid: number }>(
      impl === "ours" ? "resource.ts" : "official-resource.ts",
      {
        facilitatorUrl: facilitator.info.url,
        payTo: bench.payee.address,
        paths: paths !== undefined,
        batch: paths === "batch",
      },
    );
  } catch (error) {
    // A child that failed to start must not leave the others, or anvil, running after the benchmark.
    await facilitator?.stop();
    await bench.stop();
    throw error;
  }
  const started = { facilitator, server };
  return {
    bench,
    ...started,
    async stop() {
      await started.server.stop();
      await started.facilitator.stop();
      await bench.stop();
    },
  };
}

/** Paid requests per turn when the two sequential runs alternate: long enough to stay warm. */
const CHUNK = 50;

/**
 * One agent on the devnet `x402-devnet up` starts by default (ten wallets), a fixed number of paid
 * requests after a warm-up; the official stack alike, on a devnet of its own, the two taking turns. The
 * count is fixed because under automine every payment is a block, and anvil takes about 2 µs longer to
 * mine a block for every block already on the chain (8 ms for an empty block at height 4,000): latency
 * drifts up with the length of the run, not with load, and both chains grow alike.
 */
async function sequentialPhase(requests: number, path = PATH, kind?: PathKind) {
  const stacks: Stack[] = [];
  const clients: SequentialClient[] = [];
  try {
    for (const [impl, client] of [
      ["ours", ourAgent],
      ["official", officialClient],
    ] as const) {
      const stack = await startStack(10, 1, impl, kind);
      stacks.push(stack);
      const [payer] = stack.bench.payers;
      if (!payer) throw new Error("no payer");
      clients.push(client(stack.server.info.url, payer, path, stack.bench.devnet.client));
    }
    const [ours, official] = clients as [SequentialClient, SequentialClient];
    log(
      `e2e ${path}: one agent, sequential, ${requests} paid requests, ours and official in turns of ${CHUNK}`,
    );
    await ours.warmUp(60);
    await official.warmUp(60);
    for (let done = 0; done < requests; done += CHUNK) {
      const count = Math.min(CHUNK, requests - done);
      await ours.run(count);
      await official.run(count);
    }
    const mine = ours.result();
    const theirs = official.result();
    const e2e = mine.latency.e2e;
    log(
      `e2e sequential: ${round(mine.rate)} paid/s, p50 ${e2e?.p50} ms, p99 ${e2e?.p99} ms ` +
        `(challenge p50 ${mine.latency.challenge?.p50} ms, sign p50 ${mine.latency.sign?.p50} ms, ` +
        `server-side verify p50 ${mine.latency.verify?.p50} ms, settle p50 ${mine.latency.settle?.p50} ms), ` +
        `${mine.failures} failed`,
    );
    log(
      `e2e sequential (official): ${round(theirs.rate)} paid/s, p50 ${theirs.latency.e2e?.p50} ms, ` +
        `p99 ${theirs.latency.e2e?.p99} ms, ${theirs.failures} failed${theirs.failed.length ? ` (${theirs.failed.join("; ")})` : ""}`,
    );
    return { ours: mine, official: theirs };
  } finally {
    for (const client of clients) await client.close();
    for (const stack of stacks) await stack.stop();
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

/**
 * Our server's facilitator calls as its `Server-Timing` reports them; a channel's vouchers make none (only
 * its deposits do), so a phase no request went through is left out rather than shown as undefined.
 */
function serverSide(latency: ReturnType<SequentialClient["result"]>["latency"]): string {
  const phases = (["verify", "settle"] as const)
    .filter((phase) => latency[phase])
    .map((phase) => `${phase} p50 ${latency[phase]?.p50} ms (${latency[phase]?.count} calls)`);
  return phases.length
    ? `server-side ${phases.join(", ")}, `
    : "no server-side facilitator timings reported, ";
}

export async function benchE2e(options: E2eOptions): Promise<Results> {
  const seconds = options.quick ? 2 : 10;
  const connections = options.connections ?? 64;
  const requests = 500;
  const { ours: sequential, official } = await sequentialPhase(requests);
  const saturated = await saturatedPhase(seconds, connections);
  const e2e = sequential.latency.e2e;
  const officialE2e = official.latency.e2e;
  // The payment paths: fewer requests, since each (or each deposit) is a block of its own on a devnet of its own.
  const pathRequests = options.quick ? 150 : 500;
  const paths: Results = {};
  for (const { path, key, what, kind } of PAYMENT_PATHS) {
    const run = await sequentialPhase(pathRequests, path, kind);
    paths[key] = {
      ...sideBySide(run.ours.rate, run.official.rate, "paid/s"),
      p50: run.ours.latency.e2e?.p50,
      p99: run.ours.latency.e2e?.p99,
      notes:
        `${what}: one agent, ${pathRequests} paid requests of ${path} on a fresh devnet (instant profile); ` +
        serverSide(run.ours.latency) +
        `${run.ours.failures} failed; official = @x402/fetch + @x402/express with the official ` +
        (kind === "batch"
          ? "batch-settlement schemes (client, server with in-memory channels) + x402Facilitator with its " +
            "BatchSettlementEvmScheme (1 key, a receiver authorizer)"
          : "exact and upto schemes + x402Facilitator (1 key)") +
        `, p50 ${run.official.latency.e2e?.p50} ms, ${run.official.failures} failed`,
    };
  }
  return {
    ...paths,
    "e2e/sequential": {
      ...sideBySide(sequential.rate, official.rate, "paid/s"),
      p50: e2e?.p50,
      p99: e2e?.p99,
      notes:
        `one agent, ${requests} paid requests on a fresh devnet (instant profile): 402 → sign → paid request ` +
        "(verify + settle) → 200; " +
        `server-side verify p50 ${sequential.latency.verify?.p50} ms, settle p50 ${sequential.latency.settle?.p50} ms; ` +
        `official = @x402/fetch + @x402/express + x402Facilitator (1 key), in turns of ${CHUNK}, p50 ${officialE2e?.p50} ms, ` +
        `p99 ${officialE2e?.p99} ms, ${official.failures} failed`,
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
