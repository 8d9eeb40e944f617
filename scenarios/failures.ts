import { type Address, encodeFunctionData, type Hash, type Hex, keccak256, toHex as viemToHex } from "viem";
import { type Agent, type AgentResult, behaviours, createAgent } from "../src/agents/index.ts";
import { mockUsdcAbi, sendAsAdmin } from "../src/chain/index.ts";
import {
  drainEth,
  dropTransaction,
  faultOnce,
  pauseMining,
  pendingTransactions,
  poolDrained,
  reorg,
  resumeMining,
  spikeBaseFee,
} from "../src/faults/index.ts";
import { seededRandom } from "../src/load/index.ts";
import type { CaseContext, ScenarioCase } from "../src/scenario/define.ts";
import {
  challengeOf,
  defineScenario,
  type HandSignedPayment,
  policyOn,
  type RawAnswer,
  sendRaw,
  signPayment,
  usdcBalances,
} from "../src/scenario/index.ts";
import { type PaidRoute, startResourceServer } from "../src/server/index.ts";
import { pricingOn, type Stack } from "../src/stack.ts";

/*
 * Failure injection: every fault a deployment of x402 meets, each as a named case with the status and x402
 * code a user should see, and the money invariants checked on chain at the end (never served unpaid, never
 * charged without service, nothing settled twice).
 *
 * Each case pays from its own devnet account (the `AGENT` indices below), so a case's charge is visible as
 * that account's balance change and cases do not interfere. Two cases use accounts outside the scenario's
 * payers (a payer with too little USDC; the fuzzed headers, signed by a key that holds nothing), so even a
 * wrongly accepted payment of theirs could never be charged, and would show up as a paid response without a
 * settlement.
 *
 * A reorg that does NOT re-include a settlement used to leave a request served unpaid and the relayer's
 * nonce one ahead of the chain; the facilitator now keeps the signed bytes of recent settlements and sends
 * them again when their block is replaced (`ReorgGuard`), so that case ends like the re-included one. */

/** Which devnet account each case pays from. */
const AGENT = {
  facilitatorDown: 0,
  facilitatorTimeout: 1,
  facilitatorSlow: 2,
  settle5xx: 3,
  rpcLatency: 4,
  rpcErrors: 5,
  chainStall: 6,
  reorg: 7,
  dropped: 8,
  baseFeeSpike: 9,
  relayersBroke: 10,
  blacklisted: 11,
  paused: 12,
  expired: 13,
  replay: 14,
  twoServers: 15,
  malformed: 16,
  rpcSendRefused: 17,
  rpcSendLost: 18,
  reorgDropped: 19,
  rpcDown: 20,
} as const;
const AGENT_COUNT = Object.keys(AGENT).length;

/** The price of both routes, in USDC base units ($0.001). */
const PRICE = 1_000n;
const FACILITATOR_TIMEOUT_MS = 1_500;
const RECEIPT_TIMEOUT_MS = 800;
const FUZZ_CASES = 48;
const FUZZ_SEED = 402;

const routes = (payees: readonly Address[]): Record<string, PaidRoute> => {
  const payTo = payees[0] as Address;
  return {
    "GET /weather": { price: PRICE, payTo, description: "Current weather", mimeType: "application/json" },
    // The facilitator wants validBefore >= now + 6 s, so a 5 s authorization can never be accepted.
    "GET /short": { price: PRICE, payTo, description: "Short-lived offer", maxTimeoutSeconds: 5 },
  };
};

// ---------------------------------------------------------------------------------------------------------
// Small helpers

const usdcBalance = async (stack: Stack, address: Address) =>
  (await usdcBalances(stack.devnet.client, [address], undefined, stack.devnet.usdc.address)).get(
    address.toLowerCase(),
  ) ?? 0n;

/** Runs `body` and says what the payer was charged meanwhile, in words. */
async function charging<T>(
  stack: Stack,
  payer: Address,
  body: () => Promise<T>,
): Promise<{ value: T; charged: string }> {
  const before = await usdcBalance(stack, payer);
  const value = await body();
  const lost = before - (await usdcBalance(stack, payer));
  const charged =
    lost === 0n
      ? "nothing charged"
      : lost === PRICE
        ? "charged once"
        : lost % PRICE === 0n
          ? `charged ${lost / PRICE} times`
          : `charged ${lost} base units`;
  return { value, charged };
}

/** One request by `who` (an agent index, or an agent a case made) and what it cost: `"<seen>, <charged>"`. */
async function payOnce(
  stack: Stack,
  request: CaseContext["request"],
  who: number | Agent,
  path = "/weather",
): Promise<string> {
  const payer = typeof who === "number" ? accountOf(stack, who).address : who.address;
  const { value, charged } = await charging(stack, payer, () => request(who, path));
  return `${seen(value)}, ${charged}`;
}

/** `"<status> <code or outcome>"`, what a user sees. */
const seen = (result: AgentResult) => `${result.status} ${result.errorCode ?? result.outcome}`;

const accountOf = (stack: Stack, index: number) => {
  const account = stack.devnet.accounts[index];
  if (!account) throw new RangeError(`no devnet account ${index}`);
  return account;
};

/** An agent of our own for a case's devnet account, e.g. one that resends its previous header. */
const agentFor = (stack: Stack, index: number, behaviour = behaviours.honest): Agent =>
  createAgent({ privateKey: accountOf(stack, index).privateKey, behaviour, policy: policyOn(stack.devnet) });

/** A deterministic key nobody funded, named for what it is for. */
const freshKey = (label: string): Hex => keccak256(viemToHex(`x402-devnet failures: ${label}`));

/** The token admin's call (blacklist, pause, …), mined before returning. */
async function asTokenAdmin(
  stack: Stack,
  call:
    | { functionName: "blacklist" | "unBlacklist"; args: [Address] }
    | { functionName: "pause" | "unpause" },
): Promise<void> {
  const data = encodeFunctionData({ abi: mockUsdcAbi, ...call } as Parameters<typeof encodeFunctionData>[0]);
  await sendAsAdmin(
    stack.devnet.client,
    { to: stack.devnet.usdc.address, data },
    `token admin ${call.functionName}`,
  );
}

const base64Json = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64");

// ---------------------------------------------------------------------------------------------------------
// Fuzzing: seeded mutations of a valid payment

type Path = (string | number)[];

function leafPaths(value: unknown, path: Path = []): Path[] {
  if (value === null || typeof value !== "object") return [path];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  const paths = entries.flatMap(([key, child]) => leafPaths(child, [...path, key]));
  return path.length > 0 ? [path, ...paths] : paths;
}

function parentOf(root: unknown, path: Path): Record<string | number, unknown> | undefined {
  let node = root as Record<string | number, unknown> | undefined;
  for (const key of path.slice(0, -1)) {
    node = node?.[key] as Record<string | number, unknown> | undefined;
    if (node === null || typeof node !== "object") return undefined;
  }
  return node;
}

const HOSTILE_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  Number.MAX_SAFE_INTEGER + 2,
  "",
  "0x",
  "-1",
  "1e3",
  "0x10",
  "NaN",
  "💸",
  "0".repeat(80),
  `0x${"zz".repeat(32)}`,
  `0x${"ff".repeat(32)}`,
  `0x${"00".repeat(20)}`,
  "x".repeat(4_000),
  [],
  {},
  [1, 2, 3],
  { $ne: null },
  "eip155:1",
  "eip155:8453 ",
  "../../etc/passwd",
];

type Mutation = { description: string; header: string };

/**
 * `count` hostile variants of a valid payment, the same ones for the same seed: a field replaced by a value
 * of another type or an absurd one, a field deleted, an unknown or `__proto__` key added, a hex digit
 * flipped, or the encoded header itself truncated or corrupted.
 */
function fuzzedHeaders(valid: HandSignedPayment, count: number, seed: number): Mutation[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const mutations: Mutation[] = [];
  for (let i = 0; i < count; i++) {
    const root = structuredClone(valid.payload);
    const paths = leafPaths(root);
    const path = pick(paths);
    const parent = parentOf(root, path);
    const key = path.at(-1) as string | number;
    const where = path.join(".");
    const kind = Math.floor(random() * 7);
    let description: string;
    let header: string | undefined;
    if (kind <= 1 && parent) {
      const value = pick(HOSTILE_VALUES);
      parent[key] = value;
      const shown = JSON.stringify(value) ?? String(value);
      description = `${where} = ${shown.length > 24 ? `${shown.slice(0, 24)}…` : shown}`;
    } else if (kind === 2 && parent) {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      description = `${where} deleted`;
    } else if (kind === 3) {
      const target = parent && typeof parent === "object" ? parent : root;
      (target as Record<string, unknown>)[pick(["isValid", "success", "extra", "admin", "amount"])] =
        pick(HOSTILE_VALUES);
      description = `unknown key added beside ${where}`;
    } else if (kind === 4) {
      // JSON.parse makes "__proto__" an own key, as a hostile client's JSON would.
      const text = JSON.stringify(root).replace(/^\{/, '{"__proto__":{"isValid":true,"x402Version":1},');
      header = Buffer.from(text, "utf8").toString("base64");
      description = "__proto__ key added";
    } else if (
      kind === 5 &&
      parent &&
      typeof parent[key] === "string" &&
      /^0x[0-9a-f]+$/i.test(parent[key])
    ) {
      const hex = parent[key] as string;
      const at = 2 + Math.floor(random() * (hex.length - 2));
      const digit = hex[at] === "0" ? "1" : "0";
      parent[key] = `${hex.slice(0, at)}${digit}${hex.slice(at + 1)}`;
      description = `${where}: hex digit ${at} flipped`;
    } else {
      const encoded = base64Json(root);
      const cut = Math.floor(random() * encoded.length);
      header =
        random() < 0.5
          ? encoded.slice(0, cut)
          : `${encoded.slice(0, cut)}${pick(["*", "-", "_", " ", "=", "%00"])}${encoded.slice(cut + 1)}`;
      description = `encoded header corrupted at ${cut}`;
    }
    mutations.push({ description, header: header ?? base64Json(root) });
  }
  return mutations;
}

// ---------------------------------------------------------------------------------------------------------
// The cases

const cases: ScenarioCase[] = [
  {
    name: "facilitator down (connection refused)",
    expected: "502 unexpected_verify_error, nothing charged",
    run: async ({ stack, request }) => {
      await stack.proxies.facilitator?.setFaults({ down: true });
      return payOnce(stack, request, AGENT.facilitatorDown);
    },
  },
  {
    name: `facilitator slower than the server's ${FACILITATOR_TIMEOUT_MS} ms timeout`,
    expected: "502 unexpected_verify_error, nothing charged",
    run: async ({ stack, request }) => {
      await stack.proxies.facilitator?.setFaults({
        faults: [{ kind: "latency", ms: FACILITATOR_TIMEOUT_MS + 1_000 }],
      });
      return payOnce(stack, request, AGENT.facilitatorTimeout);
    },
  },
  {
    name: "facilitator slow (300 ms a call) but within the timeout",
    expected: "200 paid, charged once",
    run: async ({ stack, request }) => {
      await stack.proxies.facilitator?.setFaults({ faults: [{ kind: "latency", ms: 300 }] });
      return payOnce(stack, request, AGENT.facilitatorSlow);
    },
  },
  {
    name: "facilitator answers 500 after settling; the server's retry of the same payload",
    expected: "200 paid, charged once, settle reached the facilitator twice",
    run: async ({ stack, request }) => {
      const proxy = stack.proxies.facilitator;
      if (!proxy) throw new Error("no facilitator proxy");
      const forwardedBefore = proxy.stats().forwarded;
      const once = await faultOnce(
        proxy,
        { faults: [{ kind: "status", status: 500, afterForward: true, match: { path: "/settle" } }] },
        "status",
      );
      try {
        const { value, charged } = await charging(stack, accountOf(stack, AGENT.settle5xx).address, () =>
          request(AGENT.settle5xx, "/weather"),
        );
        // verify once, settle twice (the faulted one reached the facilitator before its answer was replaced)
        const settles = proxy.stats().forwarded - forwardedBefore - 1;
        return `${seen(value)}, ${charged}, settle reached the facilitator ${settles === 2 ? "twice" : `${settles} times`}`;
      } finally {
        once.stop();
        await once.lifted;
      }
    },
  },
  {
    name: "RPC latency (30 ms on every call)",
    expected: "200 paid, charged once",
    run: async ({ stack, request }) => {
      await stack.proxies.rpc?.setFaults({ faults: [{ kind: "latency", ms: 30 }] });
      return payOnce(stack, request, AGENT.rpcLatency);
    },
  },
  {
    name: "RPC errors on eth_call (the verify simulation cannot run)",
    expected: "402 invalid_exact_evm_transaction_simulation_failed, nothing charged",
    run: async ({ stack, request }) => {
      await stack.proxies.rpc?.setFaults({
        faults: [
          { kind: "rpcError", code: -32603, message: "internal error", match: { rpcMethod: "eth_call" } },
        ],
      });
      return payOnce(stack, request, AGENT.rpcErrors);
    },
  },
  {
    name: "RPC unreachable (connection refused) while verifying",
    expected: "502 unexpected_verify_error, nothing charged",
    run: async ({ stack, request }) => {
      // The payment is not invalid; the facilitator could not judge it, and says so rather than refuse it.
      await stack.proxies.rpc?.setFaults({ down: true });
      return payOnce(stack, request, AGENT.rpcDown);
    },
  },
  {
    name: "RPC refuses the settlement transaction (JSON-RPC error on eth_sendRawTransaction*)",
    expected: "402 unexpected_settle_error, nothing charged",
    run: async ({ stack, request }) => {
      await stack.proxies.rpc?.setFaults({
        faults: [
          {
            kind: "rpcError",
            code: -32603,
            message: "internal error",
            match: { rpcMethod: "eth_sendRawTransaction*" },
          },
        ],
      });
      return payOnce(stack, request, AGENT.rpcSendRefused);
    },
  },
  {
    name: "RPC connection reset after the settlement transaction reached the node",
    expected: "200 paid, charged once",
    run: async ({ stack, request }) => {
      await stack.proxies.rpc?.setFaults({
        faults: [{ kind: "drop", afterForward: true, match: { rpcMethod: "eth_sendRawTransaction*" } }],
      });
      return payOnce(stack, request, AGENT.rpcSendLost);
    },
  },
  {
    name: "chain stall (mining paused), then the same payment presented again",
    expected:
      "402 settlement_pending, then 200 paid once mining resumed, settled by the transaction that was pending, charged once",
    run: async ({ stack, request }) => {
      const { client, blockTime } = stack.devnet;
      const agent = agentFor(stack, AGENT.chainStall, behaviours.replay);
      const { value, charged } = await charging(stack, agent.address, async () => {
        await pauseMining(client, blockTime);
        const first = await request(agent, "/weather");
        const pending = await pendingTransactions(stack.devnet.client);
        await resumeMining(client, blockTime);
        await poolDrained(stack.devnet.client);
        const again = await request(agent, "/weather");
        return { first, pending, again };
      });
      const { first, pending, again } = value;
      const which =
        again.transaction && pending.includes(again.transaction)
          ? "settled by the transaction that was pending"
          : `settled by ${again.transaction ?? "no transaction"} (pending were ${pending.join(", ") || "none"})`;
      return `${seen(first)}, then ${seen(again)} once mining resumed, ${which}, ${charged}`;
    },
  },
  {
    name: "reorg of the block holding a settlement (transactions re-included)",
    expected:
      "200 paid; after a 1-block reorg its settlement is re-included: same hash, same height, new block, receipt success; charged once",
    run: async ({ stack, request }) => {
      const { client } = stack.devnet;
      const { value, charged } = await charging(stack, accountOf(stack, AGENT.reorg).address, async () => {
        const paid = await request(AGENT.reorg, "/weather");
        if (!paid.transaction) return { paid, text: "no settlement transaction to reorg" };
        const hash = paid.transaction as Hash;
        const before = await client.getTransactionReceipt({ hash });
        const head = await client.getBlockNumber({ cacheTime: 0 });
        if (before.blockNumber !== head) return { paid, text: `settlement not in the head block (${head})` };
        const result = await reorg(client, 1, { reinclude: true });
        const after = await client.getTransactionReceipt({ hash }).catch(() => undefined);
        const facts = [
          result.transactions.includes(hash) ? "same hash" : "hash not among the replaced transactions",
          after?.blockNumber === before.blockNumber ? "same height" : `height ${after?.blockNumber}`,
          after && after.blockHash !== before.blockHash ? "new block" : "same block",
          after ? `receipt ${after.status}` : "no receipt",
        ];
        return { paid, text: `its settlement is re-included: ${facts.join(", ")}` };
      });
      return `${seen(value.paid)}; after a 1-block reorg ${value.text}; ${charged}`;
    },
  },
  {
    name: "reorg that drops the block holding a settlement (not re-included)",
    expected:
      "200 paid; a 1-block reorg drops its settlement; the facilitator mines the same transaction again: receipt success; charged once",
    run: async ({ stack, request }) => {
      const { client } = stack.devnet;
      const { value, charged } = await charging(
        stack,
        accountOf(stack, AGENT.reorgDropped).address,
        async () => {
          const paid = await request(AGENT.reorgDropped, "/weather");
          if (!paid.transaction) return { paid, text: "no settlement transaction to reorg" };
          const hash = paid.transaction as Hash;
          const result = await reorg(client, 1);
          if (!result.transactions.includes(hash))
            return { paid, text: "the settlement was not in the reorged block" };
          // Its receipt appearing again is the facilitator having sent it again.
          const after = await client
            .waitForTransactionReceipt({ hash, timeout: 5_000 })
            .catch(() => undefined);
          return {
            paid,
            text: `a 1-block reorg drops its settlement; the facilitator mines the same transaction again: ${after ? `receipt ${after.status}` : "no receipt"}`,
          };
        },
      );
      return `${seen(value.paid)}; ${value.text}; ${charged}`;
    },
  },
  {
    name: "dropped settlement transaction, then the same payment presented again",
    expected:
      "402 settlement_pending; its transaction dropped from the pool; then 200 paid once resubmitted, charged once",
    run: async ({ stack, request }) => {
      const { client, blockTime } = stack.devnet;
      const agent = agentFor(stack, AGENT.dropped, behaviours.replay);
      const { value, charged } = await charging(stack, agent.address, async () => {
        await pauseMining(client, blockTime);
        const first = await request(agent, "/weather");
        const pending = await pendingTransactions(stack.devnet.client);
        const dropped = (await Promise.all(pending.map((hash) => dropTransaction(client, hash)))).filter(
          Boolean,
        );
        await resumeMining(client, blockTime);
        const gone = await Promise.all(
          pending.map((hash) =>
            client.getTransaction({ hash }).then(
              () => false,
              () => true,
            ),
          ),
        );
        const again = await request(agent, "/weather");
        const mined = again.transaction
          ? await client.getTransactionReceipt({ hash: again.transaction as Hash }).catch(() => undefined)
          : undefined;
        return { first, dropped: dropped.length, gone: gone.every(Boolean), again, mined };
      });
      const { first, again } = value;
      const drop =
        value.dropped === 1 && value.gone
          ? "its transaction dropped from the pool"
          : `${value.dropped} transaction(s) dropped${value.gone ? "" : ", but the node still knows one"}`;
      const settled = value.mined?.status === "success" ? "once resubmitted" : "without a mined settlement";
      return `${seen(first)}; ${drop}; then ${seen(again)} ${settled}, ${charged}`;
    },
  },
  {
    name: "base-fee spike to 50 gwei",
    expected: "200 paid, charged once",
    run: async ({ stack, request }) => {
      const { client } = stack.devnet;
      const baseFee = (await client.getBlock({ blockTag: "latest" })).baseFeePerGas ?? 1_000_000_000n;
      try {
        await spikeBaseFee(client, 50);
        return await payOnce(stack, request, AGENT.baseFeeSpike);
      } finally {
        // The spike would otherwise linger (and decay only 1/8 a block) into the cases after this one.
        await client.setNextBlockBaseFeePerGas({ baseFeePerGas: baseFee });
        await client.mine({ blocks: 1 });
      }
    },
  },
  {
    name: "every relayer out of ETH",
    expected: "402 unexpected_settle_error, nothing charged",
    run: async ({ stack, request }) => {
      const { client } = stack.devnet;
      const balances = await Promise.all(stack.relayers.map((r) => drainEth(client, r.address)));
      try {
        return await payOnce(stack, request, AGENT.relayersBroke);
      } finally {
        await Promise.all(
          stack.relayers.map((r, i) => client.setBalance({ address: r.address, value: balances[i] ?? 0n })),
        );
      }
    },
  },
  {
    name: "payer with too little USDC (price minus one base unit)",
    expected: "402 invalid_exact_evm_insufficient_balance, nothing charged",
    run: async ({ stack, request }) => {
      const privateKey = freshKey("too little USDC");
      const poor = createAgent({ privateKey, policy: policyOn(stack.devnet) });
      await stack.devnet.fund([poor.address], { eth: 0n, usdc: PRICE - 1n });
      return payOnce(stack, request, poor);
    },
  },
  {
    name: "payer blacklisted by the token",
    expected: "402 invalid_exact_evm_transaction_simulation_failed, nothing charged",
    run: async ({ stack, request }) => {
      const payer = accountOf(stack, AGENT.blacklisted).address;
      await asTokenAdmin(stack, { functionName: "blacklist", args: [payer] });
      try {
        return await payOnce(stack, request, AGENT.blacklisted);
      } finally {
        await asTokenAdmin(stack, { functionName: "unBlacklist", args: [payer] });
      }
    },
  },
  {
    name: "token paused",
    expected: "402 invalid_exact_evm_transaction_simulation_failed, nothing charged",
    run: async ({ stack, request }) => {
      await asTokenAdmin(stack, { functionName: "pause" });
      try {
        return await payOnce(stack, request, AGENT.paused);
      } finally {
        await asTokenAdmin(stack, { functionName: "unpause" });
      }
    },
  },
  {
    name: "authorization too short-lived (route maxTimeoutSeconds 5 < the facilitator's 6 s margin)",
    expected: "402 invalid_exact_evm_payload_authorization_valid_before, nothing charged",
    run: async ({ stack, request }) => {
      return payOnce(stack, request, AGENT.expired, "/short");
    },
  },
  {
    name: "replay of a used payment header",
    expected: "200 paid, then the same header again: 402 invalid_exact_evm_nonce_already_used, charged once",
    run: async ({ stack, request }) => {
      const agent = agentFor(stack, AGENT.replay, behaviours.replay);
      const { value, charged } = await charging(stack, agent.address, async () => {
        const first = await request(agent, "/weather");
        const again = await request(agent, "/weather");
        return { first, again };
      });
      return `${seen(value.first)}, then the same header again: ${seen(value.again)}, ${charged}`;
    },
  },
  {
    name: "the same header sent at once to two servers sharing the facilitator",
    expected: "one 200 paid and one 402 invalid_exact_evm_nonce_already_used, charged once",
    run: async ({ stack, recordPaid }) => {
      const account = accountOf(stack, AGENT.twoServers);
      const second = await startResourceServer({
        ...pricingOn(stack.devnet),
        facilitatorUrl: stack.facilitatorUrl,
        routes: routes(stack.payees.map((p) => p.address)),
      });
      try {
        const payment = signPayment(await challengeOf(stack.server.url, "/weather"), account.privateKey);
        const { value: answers, charged } = await charging(stack, account.address, () =>
          Promise.all([
            sendRaw(stack.server.url, "/weather", payment.header),
            sendRaw(second.url, "/weather", payment.header),
          ]),
        );
        for (const answer of answers) {
          if (answer.served && answer.transaction) {
            recordPaid({
              payer: account.address,
              payTo: payment.requirements.payTo as Address,
              amount: BigInt(payment.requirements.amount),
              transaction: answer.transaction,
            });
          }
        }
        const words = answers
          .map((a) =>
            a.served
              ? `${a.status} ${a.transaction ? "paid" : "served without a receipt"}`
              : `${a.status} ${a.code}`,
          )
          .sort();
        const served = words.filter((w) => w.startsWith("2"));
        const refused = words.filter((w) => !w.startsWith("2"));
        const text =
          served.length === 1 && refused.length === 1
            ? `one ${served[0]} and one ${refused[0]}`
            : `${words.join(" and ")}`;
        return `${text}, ${charged}`;
      } finally {
        await second.stop();
      }
    },
  },
  {
    // Over 16 KiB a request never reaches the paywall: Node's HTTP parser refuses all headers together
    // beyond --max-http-header-size (16 KiB) with 431 Request Header Fields Too Large (RFC 6585), which is
    // the right answer. Under that limit, a long header that is not a payment is the paywall's 400.
    name: "malformed headers: bad base64, long (12 KiB), oversize (17 KiB), wrong types in the JSON",
    expected:
      "bad base64 → 400 invalid_payload; long → 400 invalid_payload; oversize → 431 Request Header Fields Too Large; wrong types → 400 invalid_payload; none served, nothing charged",
    run: async ({ stack }) => {
      const account = accountOf(stack, AGENT.malformed);
      const valid = signPayment(await challengeOf(stack.server.url, "/weather"), account.privateKey);
      const wrongTypes = structuredClone(valid.payload) as {
        x402Version: unknown;
        accepted: Record<string, unknown>;
        payload: { signature: unknown; authorization: Record<string, unknown> };
      };
      wrongTypes.accepted.amount = Number(wrongTypes.accepted.amount);
      wrongTypes.payload.authorization.value = 1000;
      wrongTypes.payload.authorization.validBefore = true;
      wrongTypes.payload.signature = ["0x00"];
      const probes: [string, string][] = [
        ["bad base64", "%%% this is not base64 %%%"],
        ["long", "A".repeat(12 * 1024)],
        ["oversize", "A".repeat(17 * 1024)],
        ["wrong types", base64Json(wrongTypes)],
      ];
      const { value: answers, charged } = await charging(stack, account.address, () =>
        Promise.all(probes.map(([, header]) => sendRaw(stack.server.url, "/weather", header))),
      );
      const parts = answers.map((a, i) => `${probes[i]?.[0]} → ${a.status} ${a.code}`);
      const served = answers.filter((a) => a.served).length;
      return `${parts.join("; ")}; ${served === 0 ? "none served" : `${served} served`}, ${charged}`;
    },
  },
  {
    name: `fuzzed payment headers (${FUZZ_CASES} seeded mutations of a valid one)`,
    expected: `all ${FUZZ_CASES} refused with 400 or 402: never 500, never served`,
    run: async ({ stack }) => {
      // Signed by a key that holds nothing: even a mutation that stayed valid could never be charged.
      const valid = signPayment(await challengeOf(stack.server.url, "/weather"), freshKey("fuzz"));
      const mutations = fuzzedHeaders(valid, FUZZ_CASES, FUZZ_SEED);
      // One after the other: all variants carry the same authorization, and the server lets one request at
      // a time hold an authorization (the others would be refused as replays, whatever their mutation).
      const answers: RawAnswer[] = [];
      for (const mutation of mutations)
        answers.push(await sendRaw(stack.server.url, "/weather", mutation.header));
      const bad = answers
        .map((answer, i) => ({ answer, mutation: mutations[i] as Mutation }))
        .filter(({ answer }) => answer.served || (answer.status !== 400 && answer.status !== 402));
      if (bad.length === 0) return `all ${FUZZ_CASES} refused with 400 or 402: never 500, never served`;
      return `${bad.length} of ${FUZZ_CASES} not refused with 400/402: ${bad
        .slice(0, 5)
        .map(({ answer, mutation }) => `${mutation.description} → ${answer.status} ${answer.code}`)
        .join("; ")}`;
    },
  },
  {
    name: "after every fault is healed: eight payers at once",
    expected: "8 × 200 paid, each charged once",
    run: async ({ stack, request }: CaseContext) => {
      const indices = [
        AGENT.facilitatorDown,
        AGENT.facilitatorTimeout,
        AGENT.rpcErrors,
        AGENT.baseFeeSpike,
        AGENT.relayersBroke,
        AGENT.blacklisted,
        AGENT.paused,
        AGENT.expired,
      ];
      const results = await Promise.all(
        indices.map((index) =>
          charging(stack, accountOf(stack, index).address, () => request(index, "/weather")),
        ),
      );
      const words = [...new Set(results.map(({ value }) => seen(value)))];
      const charges = [...new Set(results.map(({ charged }) => charged))];
      return `${words.length === 1 ? `${results.length} × ${words[0]}` : words.join(" / ")}, ${
        charges.length === 1 && charges[0] === "charged once" ? "each charged once" : charges.join(" / ")
      }`;
    },
  },
];

export default defineScenario({
  name: "failures",
  description:
    "injected faults (facilitator down/slow/5xx, RPC latency and errors, chain stall, reorg, dropped transaction, base-fee spike, relayers out of ETH, token refusals, expired and replayed payments, hostile headers), each with the status and code a user should see",
  agents: { count: AGENT_COUNT, fixed: "each case pays from a devnet account of its own" },
  facilitator: { receiptTimeoutMs: RECEIPT_TIMEOUT_MS },
  server: { routes, facilitatorTimeoutMs: FACILITATOR_TIMEOUT_MS },
  faults: { rpc: true, facilitator: true },
  reorgs: true,
  cases,
});
