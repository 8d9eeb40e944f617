import { randomUUID } from "node:crypto";
import type { Address, Hash } from "viem";
import {
  type Agent,
  type AgentOutcome,
  type AgentResult,
  createAgent,
  DEFAULT_MAX_PER_PAYMENT,
  type SpendingPolicy,
} from "../agents/index.ts";
import { approvePermit2 } from "../chain/index.ts";
import { resumeMining } from "../faults/index.ts";
import {
  DEFAULT_MAX_IN_FLIGHT,
  executeLoad,
  type LoadModel,
  modelDurationMs,
  pathOf,
  RunMetrics,
  startProgress,
} from "../load/index.ts";
import type { Stack } from "../stack.ts";
import { facilitatorCallCount, paymentCost, WireTally } from "./baseline.ts";
import { agentChannels, channelInvariants, isChannelPath, scanChannels } from "./channels.ts";
import { costOf, costPrices, readL1FeeParams } from "./cost.ts";
import {
  type CaseContext,
  checkOverrides,
  checkScenario,
  DEFAULT_TARGET,
  type InvariantContext,
  type ScenarioCase,
  type ScenarioDefinition,
  type ScenarioInvariant,
} from "./define.ts";
import type { EngineSettings, LoadEngine, RunPlan } from "./engine.ts";
import {
  moneyInvariants,
  PaidLog,
  payoutSplits,
  scanSettlements,
  splitterInvariant,
  usdcBalances,
  usdcNetTransfers,
} from "./invariants.ts";
import type { InvariantResult, MeasuredReport, RunReport } from "./report.ts";
import {
  costOptionsOn,
  describeRun,
  devnetConfig,
  judged,
  measuredFigures,
  messageOf,
  PostRunSteps,
  type RunError,
} from "./run-steps.ts";
import { watchSettlementLoad } from "./settlement-load.ts";
import { startSampler } from "./steady-state.ts";
import { policyOn, type RunTarget, startTarget, type TargetOptions } from "./target.ts";
import { parseThreshold } from "./thresholds.ts";
import { optionalPositive } from "./validate.ts";

export type RunOverrides = TargetOptions &
  EngineSettings & {
    agents?: number;
    /** Total duration; an open model's stages are scaled to it. */
    durationMs?: number;
    /** A constant arrival rate (per second): turns the run into an open model. */
    rate?: number;
    /** More thresholds, on top of the scenario's. */
    thresholds?: readonly string[];
    seed?: number;
    /** What drives the load (default {@link inProcessEngine}: the agents in this process). */
    engine?: LoadEngine;
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
 * The scenario, the overrides and the thresholds are checked before anything starts, so a typo costs
 * nothing. Once the load has run, a report always comes back: an abort (`signal`) ends the load early
 * and the report says so (`interrupted`); a post-run step that throws is named in `error`. Either way the
 * run is not ok.
 */
export async function runScenario(
  scenario: ScenarioDefinition,
  overrides: RunOverrides = {},
): Promise<RunReport> {
  checkScenario(scenario);
  const agentCount = optionalPositive("agents", overrides.agents, true) ?? scenario.agents.count;
  optionalPositive("durationMs", overrides.durationMs, false);
  optionalPositive("rate", overrides.rate, false);
  const seed = optionalPositive("seed", overrides.seed, true) ?? scenario.seed ?? 1;
  const ignored = checkOverrides(scenario, {
    ...overrides,
    profile: overrides.devnet?.profile,
  });
  const thresholds = [...(scenario.thresholds ?? []), ...(overrides.thresholds ?? [])].map(parseThreshold);
  const model = effectiveModel(scenario.load, overrides);
  const plan: RunPlan = { agentCount, seed, model, thresholds, ignored };
  const engine = overrides.engine ?? inProcessEngine;
  engine.check(scenario, plan);

  const target = await startTarget(scenario, overrides, agentCount);
  let report: RunReport;
  try {
    report = await engine.run(scenario, overrides, target, plan);
  } catch (error) {
    await target.stop().catch(() => undefined);
    throw error;
  }
  try {
    await target.stop();
  } catch (error) {
    return withError(report, { step: "stop the stack", message: messageOf(error) });
  }
  return report;
}

const withError = (report: RunReport, error: RunError): RunReport => ({
  ...report,
  error: report.error ?? error,
  ok: false,
});

/** The agents in this process, driven by the in-process executor: every engine's reference. */
export const inProcessEngine: LoadEngine = {
  name: "in process",
  check: () => {},
  run: runInProcess,
};

async function runInProcess(
  scenario: ScenarioDefinition,
  overrides: EngineSettings,
  target: RunTarget,
  { agentCount, seed, model, thresholds, ignored }: RunPlan,
): Promise<RunReport> {
  const { devnet, stack } = target;
  const agents = devnet.accounts.map((account) =>
    createAgent({
      privateKey: account.privateKey,
      policy: policyOn(devnet, scenario.agents.policy),
      behaviour: scenario.agents.behaviour,
    }),
  );
  const payers = devnet.accounts.map((a) => a.address);
  if (scenario.agents.permit2Allowance) {
    await approvePermit2(devnet.client, devnet.accounts, devnet.usdc.address, devnet.mineOnDemand);
  }
  // Balances as of one block, so a block mined meanwhile (interval mining, others' traffic) cannot skew them.
  const startBlock = await devnet.client.getBlockNumber({ cacheTime: 0 });
  const token = devnet.usdc.address;
  const before = await usdcBalances(devnet.client, [...payers, ...target.payees], startBlock, token);

  const metrics = new RunMetrics();
  // The paid requests' e2e again, with each one's payment path standing for its outcome.
  const paid = new PaidLog();
  // Channel payments apart: no transfer stands for one request, so the channel invariants check them.
  const channelPaid = new PaidLog();
  const routes = new RouteWatch();
  let loadOver = false;
  const request = async (who: number | Agent, path: string, init?: RequestInit): Promise<AgentResult> => {
    const agent = typeof who === "number" ? agents[who] : who;
    if (!agent) throw new RangeError(`no agent ${String(who)}: the scenario has ${agents.length}`);
    const url = target.url(path);
    const result = await agent.request(url, init);
    // A request the drain after an abort gave up on is not part of the report it no longer waits for.
    if (loadOver) return result;
    metrics.record(result);
    wire.add(result);
    routes.record(init?.method ?? "GET", url, result.outcome);
    if (result.outcome === "paid" && result.payTo && result.amount !== undefined) {
      const channel = isChannelPath(result.path);
      (channel ? channelPaid : paid).add({
        payer: agent.address,
        payTo: result.payTo as Address,
        // A metered payment is held to what its receipt says was settled, and to what was signed.
        amount: result.charged ?? result.amount,
        transaction: result.transaction as Hash | undefined,
        ...(result.charged === undefined ? {} : { signed: result.amount }),
      });
    }
    return result;
  };
  // Cost per payment: the agents' HTTP traffic, our facilitator's calls and this process's CPU over the load.
  const wire = new WireTally();
  const facilitatorRegistry = stack?.facilitator?.metrics.registry;
  const callsBefore = facilitatorRegistry ? await facilitatorCallCount(facilitatorRegistry) : undefined;
  const cpuBefore = process.cpuUsage();
  const startedAt = new Date();
  const started = performance.now();
  const sampler = startSampler(devnet.client, devnet.pid);
  const facilitator = stack?.facilitator;
  const settlementWatch = facilitator && watchSettlementLoad(() => facilitator.settlementLoad());

  const cases =
    stack && scenario.cases
      ? await runCases(
          scenario.cases,
          { stack, agents, request, recordPaid: (record) => paid.add(record) },
          overrides.signal,
        )
      : [];

  let dropped = 0;
  let abandoned = 0;
  if (model && !overrides.signal?.aborted) {
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
        await request(context.agent, typeof path === "function" ? path(context) : pathOf(path, context));
      },
    });
    stopProgress();
    dropped = execution.dropped;
    abandoned = execution.abandoned;
  }
  loadOver = true;
  const cpu = process.cpuUsage(cpuBefore);
  const durationMs = performance.now() - started;
  const samples = await sampler.stop();
  const settlementLoad = settlementWatch?.stop();
  const interrupted = overrides.signal?.aborted === true;

  const figures = measuredFigures(metrics, durationMs, samples);
  const latencyByPath = figures.latencyByPath ?? {};
  const measured: MeasuredReport = {
    scenario: scenario.name,
    description: `${scenario.description} (${describeRun(agentCount, model, cases.length)})`,
    config: {
      agents: agentCount,
      load: model,
      devnet: devnetConfig(devnet),
      serverUrl: target.serverUrl,
      facilitatorUrl: target.facilitatorUrl,
      routes: target.routes,
      dropped,
      abandoned,
      ignored,
    },
    seed,
    runId: randomUUID(),
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(durationMs),
    interrupted,
    ...figures,
    ...(settlementLoad ? { settlementLoad } : {}),
    warnings: [
      ...routes.warnings(),
      ...(dropped > 0
        ? [
            `${dropped} arrival${dropped === 1 ? " was" : "s were"} dropped: ${model?.kind === "open" ? (model.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT) : 0} requests were already in flight, so the offered rate was not applied`,
          ]
        : []),
      ...(abandoned > 0
        ? [
            `${abandoned} request${abandoned === 1 ? " was" : "s were"} still in flight when the run stopped; any payment they made is not in this report`,
          ]
        : []),
    ],
    chain: {
      startBlock: Number(startBlock),
      endBlock: Number(startBlock),
      settlements: 0,
      settlementTransactions: 0,
      gasUsed: "0",
    },
    ...(cases.length > 0 ? { cases } : {}),
  };

  const invariants: InvariantResult[] = [];
  const steps = new PostRunSteps(overrides.stepDeadlineMs, interrupted);
  const step = steps.step.bind(steps);

  const { afterLoad } = scenario;
  if (afterLoad) {
    await step("run the scenario's afterLoad", async () => {
      await afterLoad({ stack, devnet, agents });
    });
  }
  const splits = await step("read payout splitters", () => payoutSplits(devnet.client, paid.payTos()));
  const payees = [
    ...new Set(
      [
        ...target.payees,
        ...paid.payTos(),
        ...channelPaid.payTos(),
        ...[...(splits?.values() ?? [])].flatMap((s) => s.payees),
      ].map((a) => a.toLowerCase() as Address),
    ),
  ];
  const endBlock = await step("read the end block", () => devnet.client.getBlockNumber({ cacheTime: 0 }));
  // As of the block the settlements are read to, so that a settlement landing after it is in neither.
  const after = await step("read balances at the end", () =>
    usdcBalances(devnet.client, [...payers, ...payees], endBlock, token),
  );
  await step("derive learnt payees' balances at the start", async () => {
    // Payees learnt during the run (a route of the user's server, a splitter's payees) were not read when it
    // started; their Transfer logs since then give it, where a pruned chain no longer holds that block's state.
    const learnt = payees.filter((a) => !before.has(a));
    if (learnt.length === 0 || !after || endBlock === undefined) return;
    const moved = await usdcNetTransfers(devnet.client, learnt, startBlock + 1n, endBlock, token);
    for (const [address, change] of moved) before.set(address, (after.get(address) ?? 0n) - change);
  });
  // The channels first: their deposits' token logs are not payments, which the settlement scan must know.
  const read =
    endBlock === undefined
      ? undefined
      : await step("read settlements", async () => {
          const channels = await scanChannels(devnet.client, {
            payers,
            known: agentChannels(agents),
            fromBlock: startBlock + 1n,
            toBlock: endBlock,
            token,
          });
          // Only the run's own agents' settlements: on a chain someone else also uses, theirs are not ours.
          const settlements = await scanSettlements(devnet.client, {
            payers,
            paid,
            fromBlock: startBlock + 1n,
            toBlock: endBlock,
            token,
            // A Permit2 settlement leaves only the token's Transfer: read those when any path paid by one.
            permit2: Object.keys(latencyByPath).some(
              (path) => path !== "exact/eip3009" && !isChannelPath(path),
            ),
            deposits: channels.deposits,
          });
          return { channels, settlements };
        });
  const channels = read?.channels;
  const settled = read?.settlements;
  // A run that touched no channel keeps the money invariants' words exactly as without channels.
  const channelRun =
    channelPaid.size > 0 ||
    (channels !== undefined && (channels.channels.length > 0 || channels.payerOut.size > 0));
  if (endBlock !== undefined && settled) {
    measured.chain = {
      startBlock: Number(startBlock),
      endBlock: Number(endBlock),
      settlements: settled.settlements,
      settlementTransactions: settled.transactions,
      gasUsed: settled.gasUsed.toString(),
    };
  }
  const callsAfter = facilitatorRegistry ? await facilitatorCallCount(facilitatorRegistry) : undefined;
  measured.paymentCost = paymentCost({
    paid: metrics.outcomes.paid ?? 0,
    settlements: measured.chain.settlements,
    gasUsed: measured.chain.gasUsed,
    wire,
    cpu,
    facilitatorCalls: callsBefore && callsAfter ? callsAfter.calls - callsBefore.calls : undefined,
    // Our facilitator's calls only (the post-run reads come after): a user's facilitator is not counted.
    jsonRpcCalls: callsBefore && callsAfter ? callsAfter.rpcCalls - callsBefore.rpcCalls : undefined,
  });
  await step("price the settlements", async () => {
    // A chain without the predeploy (the mock devnet), or one that cannot answer, is priced at the
    // defaults: the L1 figures are an estimate either way, not something a run fails on.
    const l1 = await readL1FeeParams(devnet.client, devnet.rpcUrl).catch(() => undefined);
    measured.cost = costOf(measured, costPrices(costOptionsOn(target, overrides.cost), l1));
  });
  if (splits && after && settled && channels) {
    await step("check the money invariants", async () => {
      const lost = new Map(channels.payerOut);
      for (const [payer, back] of channels.payerBack) lost.set(payer, (lost.get(payer) ?? 0n) - back);
      invariants.push(
        ...moneyInvariants({
          payers,
          payees,
          before,
          after,
          paid,
          settlements: settled,
          splits,
          ...(channelRun ? { channels: { lost, received: channels.received } } : {}),
        }),
        ...splitterInvariant(splits, after),
        ...(channelRun ? channelInvariants({ paid: channelPaid, scan: channels }) : []),
      );
    });
  }
  await step("reconcile the agents' signatures", async () => {
    // A signature a server refused may still have been cashed: the chain says which were, before the
    // policy is judged on what each agent lost and still has outstanding.
    await Promise.all(agents.map((agent) => agent.reconcile(devnet.client)));
    measured.warnings.push(...chargedWithoutService(agents));
  });
  await step("check the spending policies", async () => {
    invariants.push(policyInvariant(agents, scenario.agents.policy ?? {}));
  });
  if (endBlock !== undefined) {
    await step("check the scenario's invariants", async () => {
      // The records as objects only for a scenario that asks for them, and only once the run is over.
      const paidRecords = scenario.invariants?.length ? [...paid, ...channelPaid] : [];
      invariants.push(
        ...(await Promise.all(
          (scenario.invariants ?? []).map((invariant) =>
            checkOwnInvariant(invariant, {
              devnet,
              fromBlock: startBlock + 1n,
              toBlock: endBlock,
              agents,
              paid: paidRecords,
              report: measured,
            }),
          ),
        )),
      );
    });
  }

  return judged({ ...measured, invariants, ...(steps.error ? { error: steps.error } : {}) }, thresholds);
}

/**
 * Watches each route's outcomes: a route that was paid and later answers without asking for payment is
 * serving for free, which a user should hear about even when no threshold names `outcomes.free`.
 */
class RouteWatch {
  private readonly routes = new Map<string, { paid: number; freeAfterPaid: number }>();

  record(method: string, url: string, outcome: AgentOutcome): void {
    const key = `${method.toUpperCase()} ${url}`;
    let route = this.routes.get(key);
    if (outcome === "paid") {
      if (!route) {
        route = { paid: 0, freeAfterPaid: 0 };
        this.routes.set(key, route);
      }
      route.paid += 1;
    } else if (outcome === "free" && route) {
      route.freeAfterPaid += 1;
    }
  }

  warnings(): string[] {
    return [...this.routes]
      .filter(([, r]) => r.freeAfterPaid > 0)
      .map(
        ([key, r]) =>
          `${key} was paid for, then served ${r.freeAfterPaid} time${r.freeAfterPaid === 1 ? "" : "s"} without asking for payment`,
      );
  }
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

/**
 * No agent paid, or left signed, more per payment, per run or per URL than its spending policy allows.
 * Outstanding signatures count: a server holding one can still cash it.
 */
function policyInvariant(agents: readonly Agent[], policy: SpendingPolicy) {
  const maxPerPayment = policy.maxPerPayment ?? DEFAULT_MAX_PER_PAYMENT;
  const violations: string[] = [];
  agents.forEach((agent, i) => {
    const committed = agent.spent + agent.reserved;
    if (policy.budgetPerRun !== undefined && committed > policy.budgetPerRun) {
      violations.push(
        `agent ${i} spent ${agent.spent} and holds ${agent.reserved} in live signatures > budget ${policy.budgetPerRun}`,
      );
    }
    const perResource = new Map<string, number>();
    for (const signed of [...agent.payments, ...agent.outstanding]) {
      if (signed.amount > maxPerPayment)
        violations.push(`agent ${i} signed ${signed.amount} > max ${maxPerPayment}`);
      perResource.set(signed.resourceKey, (perResource.get(signed.resourceKey) ?? 0) + 1);
    }
    for (const [resource, count] of perResource) {
      if (policy.maxPaymentsPerUrl !== undefined && count > policy.maxPaymentsPerUrl) {
        violations.push(`agent ${i} signed for ${resource} ${count} times > ${policy.maxPaymentsPerUrl}`);
      }
    }
  });
  return {
    name: "no agent exceeded its policy",
    ok: violations.length === 0,
    detail:
      violations.length === 0
        ? `${agents.length} agent${agents.length === 1 ? "" : "s"} within policy`
        : violations.slice(0, 5).join("; "),
  };
}

/**
 * Authorizations a server refused but the chain shows used: money taken without service. One line for
 * the run, naming the first agents, so that a thousand agents do not bury the summary.
 */
function chargedWithoutService(agents: readonly Agent[]): string[] {
  let payments = 0;
  let amount = 0n;
  const who: string[] = [];
  agents.forEach((agent, i) => {
    const taken = agent.payments.filter((p) => p.confirmedBy === "chain");
    if (taken.length === 0) return;
    payments += taken.length;
    for (const p of taken) amount += p.amount;
    who.push(`agent ${i} (${agent.address}) ${taken.length}`);
  });
  if (payments === 0) return [];
  const named = who.length > 3 ? `${who.slice(0, 3).join(", ")} and ${who.length - 3} more` : who.join(", ");
  return [
    `${payments} payment${payments === 1 ? " was" : "s were"} settled on chain although the server did not accept ${payments === 1 ? "it" : "them"}: ${amount} base units taken without service (${named})`,
  ];
}
