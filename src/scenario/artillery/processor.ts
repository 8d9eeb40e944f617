/**
 * The Artillery processor: bundled into one CommonJS file with the agent inlined (`bundleProcessor`), so
 * a worker, here or in the cloud, needs no install of this package. Each virtual user runs the scenario's
 * agents through `x402Agent`, the script's only flow step, and reports what they see as Artillery metrics
 * ({@link METRIC}), which Artillery merges across workers.
 */
import type { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { type Agent, createAgent } from "../../agents/agent.ts";
import { behaviours } from "../../agents/behaviours.ts";
import type { AgentResult } from "../../agents/result.ts";
import { PHASES, pathOf, seededRandom, thinkTime } from "../../load/index.ts";
import { policyOfSpec } from "../load-spec.ts";
import { type ArtilleryJob, JOB_VARIABLE, METRIC, STOP_FILE_ENV } from "./job.ts";
import { agentMnemonic, fundWorkerWallets, slotOf, slotWallets } from "./worker-wallets.ts";

type VuContext = { vars: Record<string, unknown> };

/** One worker thread's agents, set up by its first virtual user and shared by the rest. */
type WorkerAgents = {
  job: ArtilleryJob;
  slot: number;
  agents: Agent[];
  /** Requests each agent has made (its iteration count). */
  iterations: number[];
  /** When the wallets were ready: a closed model's agents loop for its duration from here. */
  readyAt: number;
  /** Virtual users started on this worker. */
  started: number;
  /** The policy's budget per agent, which spent plus outstanding signatures must not pass. */
  budget: bigint | undefined;
  overBudget: Set<number>;
};

let worker: Promise<WorkerAgents> | undefined;

const stopFile = process.env[STOP_FILE_ENV];
let stopSeen = false;
let stopCheckedAt = 0;
/** The harness asked the run to stop (Ctrl-C): looked for at most every 100 ms, not per request. */
function stopAsked(): boolean {
  if (stopSeen || !stopFile) return stopSeen;
  const now = performance.now();
  if (now - stopCheckedAt >= 100) {
    stopCheckedAt = now;
    stopSeen = existsSync(stopFile);
  }
  return stopSeen;
}

async function setUp(job: ArtilleryJob, events: EventEmitter): Promise<WorkerAgents> {
  const slot = slotOf(job.runId);
  const wallets = slotWallets(slot, job.walletsPerWorker, agentMnemonic());
  await fundWorkerWallets(job, wallets);
  for (const name of job.zeroCounters) events.emit("counter", name, 0);
  events.emit("histogram", METRIC.clock("start"), Date.now());
  events.emit("counter", METRIC.slot(slot, "workers"), 1);
  events.emit("counter", METRIC.slot(slot, "wallets"), wallets.length);
  const usdc = job.chain.usdc;
  const policy = policyOfSpec(job.spec.policy);
  const agentPolicy = {
    ...policy,
    assets: policy.assets ?? [{ network: `eip155:${job.chain.chainId}` as const, ...usdc }],
  };
  return {
    job,
    slot,
    agents: wallets.map((w) =>
      createAgent({
        privateKey: w.privateKey,
        policy: agentPolicy,
        behaviour: behaviours[job.spec.behaviour],
      }),
    ),
    iterations: wallets.map(() => 0),
    readyAt: performance.now(),
    started: 0,
    budget: policy.budgetPerRun,
    overBudget: new Set(),
  };
}

const micros = (ms: number | undefined) =>
  ms === undefined || !Number.isFinite(ms) || ms < 0 ? undefined : Math.max(1, Math.round(ms * 1000));

/** One request's result as metrics: the same figures `RunMetrics.record` keeps in process. */
function emitResult(events: EventEmitter, state: WorkerAgents, index: number, result: AgentResult): void {
  const counter = (name: string, value = 1) => events.emit("counter", name, value);
  events.emit("histogram", METRIC.clock("end"), Date.now());
  counter(METRIC.requests);
  counter(METRIC.outcome(result.outcome));
  if (result.errorCode) {
    counter(METRIC.errors);
    counter(METRIC.error(result.errorCode));
  }
  for (const phase of PHASES) {
    const value = micros(result.timings[phase]);
    if (value !== undefined) events.emit("histogram", METRIC.phase(phase), value);
  }
  const e2e = micros(result.timings.e2e);
  if (e2e !== undefined) {
    events.emit("histogram", METRIC.e2eOf(result.outcome), e2e);
    if (result.outcome === "paid" && result.path) events.emit("histogram", METRIC.e2ePath(result.path), e2e);
  }
  if (result.outcome === "paid" && result.path?.startsWith("batch-settlement/")) {
    counter(METRIC.channelPaid);
  } else if (result.outcome === "paid" && result.amount !== undefined) {
    const charged = result.charged ?? result.amount;
    counter(METRIC.slot(state.slot, "paid"));
    counter(METRIC.slot(state.slot, "charged"), Number(charged));
    counter(METRIC.charged, Number(charged));
    if (result.charged !== undefined && result.charged > result.amount) counter(METRIC.overSigned);
  }
  const agent = state.agents[index];
  if (state.budget !== undefined && agent && !state.overBudget.has(index)) {
    if (agent.spent + agent.reserved > state.budget) {
      state.overBudget.add(index);
      counter(METRIC.overBudget);
    }
  }
}

async function request(events: EventEmitter, state: WorkerAgents, index: number): Promise<void> {
  const agent = state.agents[index];
  if (!agent) return;
  const iteration = state.iterations[index] ?? 0;
  state.iterations[index] = iteration + 1;
  const path = pathOf(state.job.spec.target, { agent: index, iteration });
  const { url, fixed } = state.job.server;
  const result = await agent.request(fixed ? url : new URL(path, url).href);
  emitResult(events, state, index, result);
}

/**
 * One virtual user. Under a closed model it is one agent, looping (request, think time) for the model's
 * duration or iterations; under an open model it is one arrival, one request by the worker's agents in
 * turn, as the in-process executor hands arrivals out.
 */
export async function x402Agent(context: VuContext, events: EventEmitter): Promise<void> {
  worker ??= setUp(JSON.parse(String(context.vars[JOB_VARIABLE])) as ArtilleryJob, events);
  let state: WorkerAgents;
  try {
    state = await worker;
  } catch (error) {
    events.emit("counter", METRIC.setupFailed, 1);
    throw error;
  }
  const vu = state.started++;
  const { model } = state.job.spec;
  const index = vu % state.agents.length;
  if (stopAsked()) return;
  if (model.kind === "open") return request(events, state, index);

  const deadline = state.readyAt + model.durationMs;
  const random = seededRandom(state.job.spec.seed + vu);
  const iterations = model.iterations ?? Number.POSITIVE_INFINITY;
  for (let i = 0; i < iterations && performance.now() < deadline && !stopAsked(); i++) {
    await request(events, state, index);
    const pause = Math.min(thinkTime(model, random), deadline - performance.now());
    if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
  }
}
