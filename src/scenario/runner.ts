import { randomUUID } from "node:crypto";
import type { Address, Hash } from "viem";
import {
  type Agent,
  type AgentResult,
  createAgent,
  DEFAULT_MAX_PER_PAYMENT,
  type SpendingPolicy,
} from "../agents/index.ts";
import { type DevnetClient, readPayoutSplitter, type Split } from "../chain/index.ts";
import { resumeMining } from "../faults/index.ts";
import { executeLoad, type LoadModel, modelDurationMs, RunMetrics, startProgress } from "../load/index.ts";
import type { Stack } from "../stack.ts";
import {
  type CaseContext,
  DEFAULT_TARGET,
  type InvariantContext,
  type ScenarioCase,
  type ScenarioDefinition,
  type ScenarioInvariant,
} from "./define.ts";
import {
  type BalanceSnapshot,
  moneyInvariants,
  type PaidRecord,
  settlementsBetween,
  usdcBalances,
} from "./invariants.ts";
import type { RunReport } from "./report.ts";
import { startTarget, type TargetOptions } from "./target.ts";
import { evaluateThresholds, parseThreshold } from "./thresholds.ts";

export type RunOverrides = TargetOptions & {
  agents?: number;
  /** Total duration; an open model's stages are scaled to it. */
  durationMs?: number;
  /** A constant arrival rate (per second): turns the run into an open model. */
  rate?: number;
  /** More thresholds, on top of the scenario's. */
  thresholds?: readonly string[];
  seed?: number;
  /** Ctrl-C: stop issuing requests, finish the run and report. */
  signal?: AbortSignal;
  /** Live progress on stderr (default true). */
  progress?: boolean;
};

/** The load model after command-line overrides. */
export function effectiveModel(model: LoadModel | undefined, overrides: RunOverrides): LoadModel | undefined {
  if (!model) return undefined;
  const durationMs = overrides.durationMs ?? modelDurationMs(model);
  if (overrides.rate !== undefined) {
    return {
      kind: "open",
      stages: [{ durationMs, rate: overrides.rate }],
      maxInFlight: model.kind === "open" ? model.maxInFlight : undefined,
    };
  }
  if (model.kind === "closed") return { ...model, durationMs };
  const scale = durationMs / modelDurationMs(model);
  return { ...model, stages: model.stages.map((s) => ({ ...s, durationMs: s.durationMs * scale })) };
}

/**
 * Runs one scenario on a fresh local stack (devnet → facilitator → server), or on the parts the user
 * names (`rpcUrl`, `serverUrl`, `facilitatorUrl`), then checks thresholds and the money invariants
 * against chain state. What the run started is torn down on success, failure and abort alike.
 * Thresholds are parsed before anything starts, so a typo costs nothing.
 */
export async function runScenario(
  scenario: ScenarioDefinition,
  overrides: RunOverrides = {},
): Promise<RunReport> {
  const thresholds = [...(scenario.thresholds ?? []), ...(overrides.thresholds ?? [])].map(parseThreshold);
  const agentCount = overrides.agents ?? scenario.agents.count;
  const seed = overrides.seed ?? scenario.seed ?? 1;
  const model = effectiveModel(scenario.load, overrides);

  const target = await startTarget(scenario, overrides, agentCount);
  try {
    const { devnet, stack } = target;
    const agents = devnet.accounts.map((account) =>
      createAgent({
        privateKey: account.privateKey,
        policy: scenario.agents.policy,
        behaviour: scenario.agents.behaviour,
      }),
    );
    const payers = devnet.accounts.map((a) => a.address);
    // Balances as of one block, so a block mined meanwhile (interval mining, others' traffic) cannot skew them.
    const startBlock = await devnet.client.getBlockNumber({ cacheTime: 0 });
    const before = await usdcBalances(devnet.client, [...payers, ...target.payees], startBlock);

    const metrics = new RunMetrics();
    const paid: PaidRecord[] = [];
    const request = async (who: number | Agent, path: string, init?: RequestInit): Promise<AgentResult> => {
      const agent = typeof who === "number" ? agents[who] : who;
      if (!agent) throw new RangeError(`no agent ${String(who)}: the scenario has ${agents.length}`);
      const result = await agent.request(target.url(path), init);
      metrics.record(result);
      if (result.outcome === "paid" && result.payTo && result.amount !== undefined) {
        paid.push({
          payer: agent.address,
          payTo: result.payTo as Address,
          amount: result.amount,
          transaction: result.transaction as Hash | undefined,
        });
      }
      return result;
    };
    const startedAt = new Date();
    const started = performance.now();

    const cases =
      stack && scenario.cases
        ? await runCases(
            scenario.cases,
            { stack, agents, request, recordPaid: (record) => paid.push(record) },
            overrides.signal,
          )
        : [];

    let dropped = 0;
    if (model) {
      const path = scenario.target ?? DEFAULT_TARGET;
      const stopProgress =
        overrides.progress === false
          ? () => {}
          : startProgress(metrics, { totalMs: modelDurationMs(model), label: scenario.name });
      const execution = await executeLoad(model, {
        agents: agentCount,
        seed,
        signal: overrides.signal,
        task: async (context) => {
          await request(context.agent, typeof path === "string" ? path : path(context));
        },
      });
      stopProgress();
      dropped = execution.dropped;
    }
    const durationMs = performance.now() - started;

    const endBlock = await devnet.client.getBlockNumber({ cacheTime: 0 });
    const splits = await payoutSplits(devnet.client, paid);
    // Payees learnt during the run (a route of the user's server, a splitter's payees) are read as of
    // the block the run started at.
    const payees = [
      ...new Set(
        [...target.payees, ...paid.map((p) => p.payTo), ...[...splits.values()].flatMap((s) => s.payees)].map(
          (a) => a.toLowerCase() as Address,
        ),
      ),
    ];
    const learnt = payees.filter((a) => !before.has(a));
    for (const [address, balance] of await usdcBalances(devnet.client, learnt, startBlock)) {
      before.set(address, balance);
    }
    const after = await usdcBalances(devnet.client, [...payers, ...payees]);
    const payerSet = new Set(payers.map((a) => a.toLowerCase()));
    // Only the run's own agents' settlements: on a chain someone else also uses, theirs are not ours.
    const settlements = (await settlementsBetween(devnet.client, startBlock + 1n, endBlock)).filter((s) =>
      payerSet.has(s.authorizer.toLowerCase()),
    );
    const transactions = [...new Set(settlements.map((s) => s.transaction))];
    const receipts = await Promise.all(
      transactions.map((hash) => devnet.client.getTransactionReceipt({ hash })),
    );
    const gasUsed = receipts.reduce((total, r) => total + r.gasUsed, 0n);
    const seconds = durationMs / 1000;

    const measured: Omit<RunReport, "thresholds" | "invariants" | "ok"> = {
      scenario: scenario.name,
      description: scenario.description,
      config: {
        agents: agentCount,
        load: model,
        devnet: {
          profile: devnet.mode === "attached" ? undefined : (scenario.devnet?.profile ?? "instant"),
          mode: devnet.mode,
          rpcUrl: devnet.rpcUrl,
          blockTime: devnet.blockTime,
        },
        serverUrl: target.serverUrl,
        facilitatorUrl: target.facilitatorUrl,
        routes: target.routes,
        dropped,
      },
      seed,
      runId: randomUUID(),
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(durationMs),
      requests: metrics.requests,
      outcomes: metrics.outcomes,
      latency: metrics.latency(),
      latencyByOutcome: metrics.latencyByOutcome(),
      throughput: {
        requests: round(metrics.requests / seconds),
        paid: round((metrics.outcomes.paid ?? 0) / seconds),
        timeline: metrics.timeline(),
      },
      distribution: metrics.distribution(),
      errors: metrics.errors,
      chain: {
        startBlock: Number(startBlock),
        endBlock: Number(endBlock),
        settlements: settlements.length,
        settlementTransactions: transactions.length,
        gasUsed: gasUsed.toString(),
      },
      ...(cases.length > 0 ? { cases } : {}),
    };
    const partial: Omit<RunReport, "thresholds" | "ok"> = {
      ...measured,
      invariants: [
        ...moneyInvariants({ payers, payees, before, after, paid, settlements, splits }),
        ...splitterInvariant(splits, after),
        policyInvariant(agents, scenario.agents.policy ?? {}),
        ...(await Promise.all(
          (scenario.invariants ?? []).map((invariant) =>
            checkOwnInvariant(invariant, {
              devnet,
              fromBlock: startBlock + 1n,
              toBlock: endBlock,
              agents,
              paid,
              report: measured,
            }),
          ),
        )),
      ],
    };
    const thresholdResults = evaluateThresholds(thresholds, partial);
    return {
      ...partial,
      thresholds: thresholdResults,
      ok:
        thresholdResults.every((t) => t.ok) &&
        partial.invariants.every((i) => i.ok) &&
        (partial.cases ?? []).every((c) => c.ok),
    };
  } finally {
    await target.stop();
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

/** The payout splitters among the addresses that were paid. */
async function payoutSplits(client: DevnetClient, paid: readonly PaidRecord[]): Promise<Map<string, Split>> {
  const splits = new Map<string, Split>();
  for (const payTo of new Set(paid.map((p) => p.payTo.toLowerCase()))) {
    const split = await readPayoutSplitter(client, payTo as Address);
    if (split) splits.set(payTo, split);
  }
  return splits;
}

/** Every payee was credited or none was: a splitter paid out in the settling transaction holds nothing. */
function splitterInvariant(splits: ReadonlyMap<string, Split>, after: BalanceSnapshot) {
  if (splits.size === 0) return [];
  // The splitters were paid, so they are among the payees whose balances `after` holds.
  const holding = [...splits.keys()]
    .map((address) => [address, after.get(address) ?? 0n] as const)
    .filter(([, balance]) => balance !== 0n);
  return [
    {
      name: "payout splitters hold no funds",
      ok: holding.length === 0,
      detail:
        holding.length === 0
          ? `${splits.size} splitter(s) paid out everything they received`
          : holding.map(([address, balance]) => `${address} holds ${balance}`).join("; "),
    },
  ];
}

/** A scenario's own invariant; one that throws has failed, with what it threw as the detail. */
async function checkOwnInvariant(invariant: ScenarioInvariant, context: InvariantContext) {
  try {
    const { ok, detail } = await invariant.check(context);
    return { name: invariant.name, ok, detail };
  } catch (error) {
    return {
      name: invariant.name,
      ok: false,
      detail: `threw ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}

/** Runs the cases one after the other, healing faults after each, and says which saw what they expected. */
async function runCases(
  scenarioCases: readonly ScenarioCase[],
  context: CaseContext,
  signal: AbortSignal | undefined,
): Promise<NonNullable<RunReport["cases"]>> {
  const cases: NonNullable<RunReport["cases"]> = [];
  for (const testCase of scenarioCases) {
    if (signal?.aborted) break;
    let observed: string;
    try {
      observed = await testCase.run(context);
    } catch (error) {
      observed = `threw ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      await healFaults(context.stack);
    }
    cases.push({
      name: testCase.name,
      expected: testCase.expected,
      observed,
      ok: observed === testCase.expected,
    });
  }
  return cases;
}

/** Back to no faults and a mining chain after a case, whatever the case left behind. */
async function healFaults(stack: Stack): Promise<void> {
  const { blockTime, client } = stack.devnet;
  await Promise.all([
    stack.proxies.rpc?.setFaults({}),
    stack.proxies.facilitator?.setFaults({}),
    // Interval mining can only be restored in whole seconds over RPC; a fractional block time stays as started.
    blockTime === undefined || Number.isInteger(blockTime) ? resumeMining(client, blockTime) : undefined,
  ]);
}

/** No agent paid more per payment, per run or per URL than its spending policy allows. */
function policyInvariant(agents: readonly Agent[], policy: SpendingPolicy) {
  const maxPerPayment = policy.maxPerPayment ?? DEFAULT_MAX_PER_PAYMENT;
  const violations: string[] = [];
  agents.forEach((agent, i) => {
    if (policy.budgetPerRun !== undefined && agent.spent > policy.budgetPerRun) {
      violations.push(`agent ${i} spent ${agent.spent} > budget ${policy.budgetPerRun}`);
    }
    const perUrl = new Map<string, number>();
    for (const payment of agent.payments) {
      if (payment.amount > maxPerPayment)
        violations.push(`agent ${i} paid ${payment.amount} > max ${maxPerPayment}`);
      perUrl.set(payment.url, (perUrl.get(payment.url) ?? 0) + 1);
    }
    for (const [url, count] of perUrl) {
      if (policy.maxPaymentsPerUrl !== undefined && count > policy.maxPaymentsPerUrl) {
        violations.push(`agent ${i} paid ${url} ${count} times > ${policy.maxPaymentsPerUrl}`);
      }
    }
  });
  return {
    name: "no agent exceeded its policy",
    ok: violations.length === 0,
    detail:
      violations.length === 0 ? `${agents.length} agents within policy` : violations.slice(0, 5).join("; "),
  };
}
