import { readdir, readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import {
  type CostOptions,
  type CostPrices,
  costOf,
  costPrices,
  type L1FeeParams,
  readL1FeeParamsAt,
  type SettlementCost,
} from "./cost.ts";
import type { ScenarioDefinition } from "./define.ts";
import { machineSpeed } from "./machine-speed.ts";
import type { InvariantResult, RunReport, ThresholdResult } from "./report.ts";
import { type RunOverrides, runScenario } from "./runner.ts";
import type { SettlementLoadFigures } from "./settlement-load.ts";
import { metricValue } from "./thresholds.ts";
import { optionalPositive, ScenarioInputError } from "./validate.ts";

/** The phases whose latency says where a request waited: the server's 402, the facilitator, the chain. */
export type CapacityPhase = "challenge" | "verify" | "settle" | "paid";
const LIMIT_PHASES: readonly CapacityPhase[] = ["challenge", "verify", "settle", "paid"];

/** CPU cores each process kept busy over a step (CPU seconds per wall second); null where it cannot be read. */
export type CapacityCpu = {
  /** The harness process: agents, and the facilitator and server it runs in-process. */
  harness: number | null;
  /** The anvil child process; null when the run had none (an attached chain) or off Linux. */
  anvil: number | null;
  /** Cores on the machine. */
  cores: number;
  /**
   * Cores busy machine-wide (from /proc/stat), ours and everyone else's: on a shared machine, what was left
   * for the run. Absent off Linux.
   */
  machine?: number | null;
};

/**
 * One step of the search: what its run measured at one offered rate. A summary rather than the run's report,
 * so a long search does not hold every step's timeline and histograms.
 */
export type CapacityStep = {
  /** The offered arrival rate, per second. */
  rate: number;
  /** Requests completed per second. */
  achieved: number;
  /** Paid requests per second. */
  paid: number;
  requests: number;
  /** Requests that ended in an error. */
  errors: number;
  durationMs: number;
  /** End-to-end latency in ms; null when no request finished. */
  p50: number | null;
  p99: number | null;
  ok: boolean;
  /** What failed, by name: threshold expressions, then invariant and case names. Empty when the step held. */
  failed: string[];
  /** Every threshold with the value it was judged on, so a failure can be read with its actual. */
  thresholds: ThresholdResult[];
  /** The invariants that did not hold, with their detail. */
  brokenInvariants: InvariantResult[];
  /** `ramp` for the ×factor climb, `bisect` for the steps between the last rate that held and the first that failed. */
  phase?: "ramp" | "bisect";
  /**
   * Every run of this rate, in order, when it took more than one: a step's verdict is the majority's, and its
   * figures are those of the last run that voted with it.
   */
  trials?: CapacityTrial[];
  /** p50 and p99 per phase, ms: where requests waited. */
  phases?: Partial<Record<CapacityPhase, { p50: number; p99: number }>>;
  cpu?: CapacityCpu;
  /**
   * How fast the machine did a fixed piece of work just before the step's runs (the median over them), in
   * SHA-256 digests per ms ({@link machineSpeed}): when it moves between steps, so does the knee.
   */
  speed?: number;
  /** Our facilitator's relayer keys and settlement queue over the step (absent with a facilitator of yours). */
  settlementLoad?: SettlementLoadFigures;
  /** The step's settlements on chain: how many, in how many transactions, and their gas. */
  chain?: { settlements: number; transactions: number; gasUsed: string };
};

/** One run of a step's rate: its verdict and what it measured. */
export type CapacityTrial = {
  ok: boolean;
  achieved: number;
  p50: number | null;
  p99: number | null;
  /** What failed, as in {@link CapacityStep.failed}. */
  failed: string[];
};

/** How the search ended: at a step that failed, after the last step it was allowed, or stopped from outside. */
export type CapacityStop = "failure" | "max-steps" | "interrupted";

/** What gave out first at the knee, as far as the steps' figures show it. */
export type CapacityLimit = {
  /**
   * `chain`: settlement waited for blocks; `relayers`: settlements queued for a relayer key while every key
   * was busy; `facilitator`: verification; `server`: the 402 challenge or the server's own work; `cpu`: the
   * machine ran out of cores before any one part stood out.
   */
  resource: "chain" | "relayers" | "facilitator" | "server" | "cpu" | "unknown";
  /** The figures it was judged on, in words. */
  reason: string;
  /** The first rate that failed, whose figures were read. */
  rate: number;
};

/**
 * The whole search. Plain JSON data (no bigint, no class), so `JSON.stringify` writes it as it is and
 * `JSON.parse` gives it back.
 */
export type CapacityResult = {
  scenario: string;
  description: string;
  startedAt: string;
  /** How the rates were chosen. */
  settings: {
    startRate: number;
    factor: number;
    stepDurationMs: number;
    maxSteps: number;
    /** Most bisection steps after the ramp. */
    bisectSteps?: number;
    /** Bisection stops once the failing rate is within this fraction above the holding one. */
    tolerance?: number;
    /** A discarded run before the first step, so the first step does not pay for the harness's warm-up. */
    warmupMs?: number;
    /**
     * Runs of each rate that vote on its verdict, the majority deciding (it stops once one side has it); a
     * broken invariant or case is never outvoted.
     */
    trials?: number;
  };
  /** The highest offered rate whose step held (the knee, once bisected); null when none did. */
  highestRate: number | null;
  stoppedBy: CapacityStop;
  /** In the order they ran: the ramp by rising rate, then the bisection. */
  steps: CapacityStep[];
  /** What limited the rate, read from the first step that failed against the last that held. */
  limit?: CapacityLimit;
  /** What makes this search's answer less than firm: other work on the machine, too few samples for a p99. */
  notes?: string[];
  /** What settling cost at the knee, and on Base at the prices given. */
  cost?: SettlementCost;
};

export type CapacityOptions = Omit<RunOverrides, "rate" | "durationMs"> & {
  startRate?: number;
  /** Each step's rate is the previous one times this. */
  factor?: number;
  stepDurationMs?: number;
  maxSteps?: number;
  /** Most bisection steps after the ramp (default 4; 0 for none). */
  bisectSteps?: number;
  /** Stop bisecting once the interval is within this fraction (default 0.05). */
  tolerance?: number;
  /** The discarded warm-up run's length (default the step's, at most 2 s; 0 for none). */
  warmupMs?: number;
  /**
   * Runs of each rate, an odd number, whose majority decides whether it held (default 3, so 2 or 3 runs). A
   * broken invariant or case fails the step at once.
   */
  trials?: number;
  /** Prices for the knee's cost; a fork's or attached chain's GasPriceOracle gives the L1 figures. */
  cost?: CostOptions;
};

function summarizeStep(rate: number, report: RunReport): CapacityStep {
  const brokenInvariants = report.invariants.filter((i) => !i.ok);
  const failed = [
    ...report.thresholds.filter((t) => !t.ok).map((t) => t.expr),
    ...brokenInvariants.map((i) => i.name),
    ...(report.cases ?? []).filter((c) => !c.ok).map((c) => c.name),
    ...(report.error ? [`${report.error.step} failed: ${report.error.message}`] : []),
    // A step cut short measured less than it was asked to: whatever its figures, it does not hold the rate.
    ...(report.interrupted ? ["interrupted"] : []),
  ];
  if (!report.ok && failed.length === 0) failed.push("the run failed");
  const phases: CapacityStep["phases"] = {};
  for (const phase of LIMIT_PHASES) {
    const summary = report.latency[phase];
    if (summary) phases[phase] = { p50: summary.p50, p99: summary.p99 };
  }
  return {
    rate,
    achieved: report.throughput.requests,
    paid: report.throughput.paid,
    requests: report.requests,
    errors: metricValue(report, "errors.count") ?? 0,
    durationMs: report.durationMs,
    p50: report.latency.e2e?.p50 ?? null,
    p99: report.latency.e2e?.p99 ?? null,
    ok: report.ok,
    failed,
    thresholds: report.thresholds,
    brokenInvariants,
    phases,
    ...(report.settlementLoad ? { settlementLoad: report.settlementLoad } : {}),
    chain: {
      settlements: report.chain.settlements,
      transactions: report.chain.settlementTransactions,
      gasUsed: report.chain.gasUsed,
    },
  };
}

/** Only thresholds failed: a latency the machine's noise can push over, unlike a broken invariant or a case. */
const thresholdsOnly = (report: RunReport) =>
  report.ok === false &&
  !report.interrupted &&
  report.error === undefined &&
  report.invariants.every((i) => i.ok) &&
  (report.cases ?? []).every((c) => c.ok);

/** Linux's clock ticks per second, which /proc/<pid>/stat counts CPU time in. */
const CLOCK_TICKS = 100;

async function cpuSecondsOf(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The harness's children named `anvil` (each step's chain), from /proc. */
async function anvilChildren(): Promise<number[]> {
  const tasks = await readdir(`/proc/${process.pid}/task`).catch(() => [] as string[]);
  const pids = new Set<number>();
  for (const task of tasks) {
    const children = await readFile(`/proc/${process.pid}/task/${task}/children`, "utf8").catch(() => "");
    for (const pid of children.split(" ").filter(Boolean)) pids.add(Number(pid));
  }
  const anvils: number[] = [];
  for (const pid of pids) {
    const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
    if (comm.trim() === "anvil") anvils.push(pid);
  }
  return anvils;
}

/** CPU seconds the whole machine spent busy (all cores, not idle or waiting on I/O), from /proc/stat. */
async function machineBusySeconds(): Promise<number | undefined> {
  try {
    const stat = await readFile("/proc/stat", "utf8");
    const fields = (stat.split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((sum, n) => sum + n, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return (total - idle) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * CPU time of the harness and of the anvil it starts, over one step. anvil comes and goes within the step,
 * so it is sampled while it lives, and its last reading stands for its whole life.
 */
function startCpuWatch() {
  const started = performance.now();
  const harnessBefore = process.cpuUsage();
  const machineBefore = machineBusySeconds();
  const anvil = new Map<number, number>();
  let sampling: Promise<void> = Promise.resolve();
  const sample = async () => {
    for (const pid of await anvilChildren()) {
      const seconds = await cpuSecondsOf(pid);
      if (seconds !== undefined) anvil.set(pid, seconds);
    }
  };
  const onLinux = process.platform === "linux";
  const timer = onLinux
    ? setInterval(() => {
        sampling = sampling.then(sample);
      }, 250)
    : undefined;
  timer?.unref();
  return {
    async stop(): Promise<CapacityCpu> {
      clearInterval(timer);
      await sampling;
      const wall = (performance.now() - started) / 1000;
      const used = process.cpuUsage(harnessBefore);
      const round = (value: number) => Math.round(value * 100) / 100;
      const anvilSeconds = [...anvil.values()].reduce((sum, s) => sum + s, 0);
      const [machineStart, machineEnd] = await Promise.all([machineBefore, machineBusySeconds()]);
      return {
        machine:
          machineStart === undefined || machineEnd === undefined
            ? null
            : round((machineEnd - machineStart) / wall),
        harness: round((used.user + used.system) / 1e6 / wall),
        anvil: onLinux && anvil.size > 0 ? round(anvilSeconds / wall) : null,
        cores: availableParallelism(),
      };
    },
  };
}

type Settings = Required<CapacityResult["settings"]>;

function settingsOf(options: CapacityOptions): Settings {
  const stepDurationMs = optionalPositive("stepDurationMs", options.stepDurationMs, false) ?? 5_000;
  const settings: Settings = {
    startRate: optionalPositive("startRate", options.startRate, false) ?? 20,
    factor: optionalPositive("factor", options.factor, false) ?? 1.5,
    stepDurationMs,
    maxSteps: optionalPositive("maxSteps", options.maxSteps, true) ?? 12,
    bisectSteps: options.bisectSteps ?? 4,
    tolerance: options.tolerance ?? 0.05,
    warmupMs: options.warmupMs ?? Math.min(stepDurationMs, 2_000),
    trials: options.trials ?? 3,
  };
  // Math.ceil would then keep the rate where it is, and the search would run the same step again and again.
  if (settings.factor <= 1) throw new ScenarioInputError(`factor must be above 1, got ${settings.factor}`);
  if (!Number.isInteger(settings.bisectSteps) || settings.bisectSteps < 0) {
    throw new ScenarioInputError(
      `bisectSteps must be a whole number of at least 0, got ${settings.bisectSteps}`,
    );
  }
  // An even count can tie, and a tie has no verdict.
  if (!(Number.isInteger(settings.trials) && settings.trials >= 1 && settings.trials % 2 === 1)) {
    throw new ScenarioInputError(`trials must be an odd whole number of at least 1, got ${settings.trials}`);
  }
  if (!(settings.tolerance > 0 && settings.tolerance < 1)) {
    throw new ScenarioInputError(`tolerance must be above 0 and below 1, got ${settings.tolerance}`);
  }
  if (!(Number.isFinite(settings.warmupMs) && settings.warmupMs >= 0)) {
    throw new ScenarioInputError(`warmupMs must be a number of at least 0, got ${settings.warmupMs}`);
  }
  return settings;
}

/**
 * Capacity planning: runs the scenario as an open model at rising arrival rates (×factor per step, each on a
 * fresh stack, so steps do not inherit a long chain) until a step fails, then bisects between the last rate
 * that held and the first that failed. Reports the knee (the highest rate that held), what limited it, each
 * process's CPU, and what settling cost there.
 *
 * What keeps two searches on one machine within a few percent of each other: a discarded warm-up run, so the
 * first step does not pay for the harness's JIT; the same seed for every step's arrivals; a step that failed
 * thresholds only is run once more before it counts, so one burst of someone else's load on the machine does
 * not end the search.
 */
export async function findCapacity(
  scenario: ScenarioDefinition,
  options: CapacityOptions = {},
): Promise<CapacityResult> {
  const settings = settingsOf(options);
  const prices = costPrices({
    ...options.cost,
    relayers: options.cost?.relayers ?? scenario.facilitator?.relayers,
  });
  const {
    cost: _cost,
    startRate: _startRate,
    factor: _factor,
    stepDurationMs: _stepDurationMs,
    maxSteps: _maxSteps,
    bisectSteps: _bisectSteps,
    tolerance: _tolerance,
    warmupMs: _warmupMs,
    trials: _trials,
    ...overrides
  } = options;
  const startedAt = new Date().toISOString();
  const steps: CapacityStep[] = [];
  const run = (rate: number, durationMs: number, progress = options.progress) =>
    runScenario(scenario, { ...overrides, progress, rate, durationMs });

  if (settings.warmupMs > 0 && !options.signal?.aborted) {
    await run(settings.startRate, settings.warmupMs, false);
  }
  const reports = new Map<CapacityStep, RunReport>();
  const majority = Math.floor(settings.trials / 2) + 1;
  const runStep = async (rate: number, phase: "ramp" | "bisect"): Promise<CapacityStep> => {
    const trials: { step: CapacityStep; report: RunReport }[] = [];
    let held: boolean | undefined;
    const speeds: number[] = [];
    while (held === undefined) {
      speeds.push(machineSpeed());
      const cpu = startCpuWatch();
      const report = await run(rate, settings.stepDurationMs);
      trials.push({ step: { ...summarizeStep(rate, report), phase, cpu: await cpu.stop() }, report });
      const holding = trials.filter((t) => t.step.ok).length;
      if (!report.ok && !thresholdsOnly(report)) held = false;
      else if (holding >= majority) held = true;
      else if (trials.length - holding >= majority) held = false;
      // Stopped between runs: what ran so far decides, a tie failing.
      else if (options.signal?.aborted) held = holding > trials.length - holding;
    }
    const voter = trials.findLast((t) => t.step.ok === held) ?? trials[trials.length - 1];
    if (!voter) throw new Error("a capacity step ran no trial");
    const step: CapacityStep = { ...voter.step, ok: held, speed: median(speeds) };
    if (trials.length > 1) {
      step.trials = trials.map(({ step: t }) => ({
        ok: t.ok,
        achieved: t.achieved,
        p50: t.p50,
        p99: t.p99,
        failed: t.failed,
      }));
    }
    steps.push(step);
    reports.set(step, voter.report);
    return step;
  };

  let rate = settings.startRate;
  let highestRate: number | null = null;
  let firstFailed: number | undefined;
  let stoppedBy: CapacityStop = "max-steps";
  for (let i = 0; i < settings.maxSteps; i++) {
    const step = await runStep(rate, "ramp");
    if (!step.ok) {
      stoppedBy = step.failed.includes("interrupted") ? "interrupted" : "failure";
      if (stoppedBy === "failure") firstFailed = rate;
      break;
    }
    highestRate = rate;
    // Stopped after a step finished whole: that step held, but the search goes no further.
    if (options.signal?.aborted) {
      stoppedBy = "interrupted";
      break;
    }
    rate = Math.ceil(rate * settings.factor);
  }
  if (steps.length === 0) throw new Error("findCapacity ran no step");

  if (highestRate !== null && firstFailed !== undefined) {
    let low = highestRate;
    let high = firstFailed;
    for (let i = 0; i < settings.bisectSteps && !options.signal?.aborted; i++) {
      if (high - low <= low * settings.tolerance) break;
      const middle = Math.round((low + high) / 2);
      // Whole rates: nothing lies between two neighbours.
      if (middle <= low || middle >= high) break;
      const step = await runStep(middle, "bisect");
      if (step.failed.includes("interrupted")) break;
      if (step.ok) low = middle;
      else high = middle;
    }
    highestRate = low;
  }

  const knee = steps.find((s) => s.ok && s.rate === highestRate);
  const kneeReport = knee && reports.get(knee);
  const result: CapacityResult = {
    scenario: scenario.name,
    description: scenario.description,
    startedAt,
    settings,
    highestRate,
    stoppedBy,
    steps,
  };
  const limit = limitOf(steps, highestRate);
  if (limit) result.limit = limit;
  const notes = searchNotes(steps);
  if (notes.length > 0) result.notes = notes;
  if (kneeReport) result.cost = costOf(kneeReport, await pricesFor(options, prices));
  return result;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

/** A spread of machine speed between steps beyond this is worth a note: the knee moves as much. */
const SPEED_SPREAD = 0.1;

/** Fewer than this many requests make a step's p99 one of its few slowest requests, not a percentile. */
const P99_SAMPLES = 1_000;

/**
 * Why two searches may disagree, where the steps show it: other processes holding the cores (the run measured
 * what was left of the machine), or a p99 judged on too few requests.
 */
export function searchNotes(steps: readonly CapacityStep[]): string[] {
  const notes: string[] = [];
  const others = steps
    .map((s) =>
      s.cpu?.machine == null ? undefined : s.cpu.machine - (s.cpu.harness ?? 0) - (s.cpu.anvil ?? 0),
    )
    .filter((n): n is number => n !== undefined);
  const cores = steps.find((s) => s.cpu)?.cpu?.cores;
  if (others.length > 0 && cores !== undefined) {
    const mean = others.reduce((sum, n) => sum + n, 0) / others.length;
    if (mean >= 0.25 * cores) {
      notes.push(
        `other processes kept ${Math.round(mean * 100) / 100} of ${cores} cores busy on average: the knee is what was left of the machine, and moves with their load`,
      );
    }
  }
  const speeds = steps.map((s) => s.speed).filter((n): n is number => n !== undefined && n > 0);
  if (speeds.length > 1) {
    const [slowest, fastest] = [Math.min(...speeds), Math.max(...speeds)];
    if (fastest / slowest - 1 > SPEED_SPREAD) {
      notes.push(
        `the machine's speed for a fixed piece of work moved ${Math.round((fastest / slowest - 1) * 100)}% between steps (${slowest}–${fastest} SHA-256 digests per ms): a CPU-bound knee moves with it, so two searches here can differ as much; a machine with cores of its own gives a steadier answer`,
      );
    }
  }
  const thin = steps.filter(
    (s) => s.requests < P99_SAMPLES && s.thresholds.some((t) => /(^|\.)p99\b/.test(t.expr)),
  );
  if (thin.length > 0) {
    const fewest = Math.min(...thin.map((s) => s.requests));
    notes.push(
      `${thin.length} step${thin.length === 1 ? "" : "s"} judged a p99 on fewer than ${P99_SAMPLES.toLocaleString("en-US")} requests (as few as ${fewest}): there it is one of the slowest few requests; a longer --duration steadies it`,
    );
  }
  return notes;
}

/** The prices with a fork's or an attached chain's L1 fee parameters, where its GasPriceOracle can be read. */
async function pricesFor(options: CapacityOptions, prices: CostPrices): Promise<CostPrices> {
  const url = options.forkUrl ?? options.rpcUrl;
  if (!url || options.cost?.l1?.source !== undefined) return prices;
  let fromChain: L1FeeParams | undefined;
  try {
    fromChain = await readL1FeeParamsAt(url);
  } catch (error) {
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return { ...prices, l1: { ...prices.l1, source: `defaults (reading ${url} failed: ${why})` } };
  }
  return fromChain ? { ...prices, l1: { ...fromChain, ...options.cost?.l1 } } : prices;
}

const PHASE_RESOURCE: Record<CapacityPhase, { resource: CapacityLimit["resource"]; what: string }> = {
  challenge: { resource: "server", what: "the server's 402 challenge" },
  verify: { resource: "facilitator", what: "the facilitator's verification" },
  settle: { resource: "chain", what: "settlement (relayers and block building)" },
  paid: { resource: "server", what: "the paid request beyond verify and settle (the server's own work)" },
};

const ms = (value: number) => `${Math.round(value * 10) / 10} ms`;
const percent = (share: number) => `${Math.round(share * 100)}%`;

/**
 * Whether slow settlements waited for a relayer key or for the chain, from the facilitator's pipeline: every
 * key busy most of the step with settlements queued behind them is the relayers' limit (more keys would
 * help); keys free is the chain's (block building, the node).
 */
function settlementWait(
  load: SettlementLoadFigures | undefined,
): { resource: CapacityLimit["resource"]; what: string } | undefined {
  if (!load) return undefined;
  const figures = `all ${load.relayers} relayer keys busy ${percent(load.allBusyShare)} of the step, ${load.queuedMean} settlements waiting for one on average (at most ${load.queuedMax})`;
  return load.allBusyShare >= 0.9 && load.queuedMean >= 1
    ? { resource: "relayers", what: `settlement, queued for relayer keys (${figures})` }
    : { resource: "chain", what: `settlement, waiting for blocks with keys to spare (${figures})` };
}

/**
 * What gave out: the phase whose p50 grew most from the last step that held to the first that failed (the
 * queue that formed there), and whether the machine's cores were all busy. The paid request's own time is
 * counted without the verify and settle it waits on.
 */
export function limitOf(
  steps: readonly CapacityStep[],
  highestRate: number | null,
): CapacityLimit | undefined {
  const failing = steps
    .filter((s) => !s.ok && !s.failed.includes("interrupted"))
    .filter((s) => highestRate === null || s.rate > highestRate)
    .sort((a, b) => a.rate - b.rate)[0];
  if (!failing) return undefined;
  const held = steps.find((s) => s.ok && s.rate === highestRate);
  const own = (step: CapacityStep | undefined, phase: CapacityPhase) => {
    const p = step?.phases?.[phase]?.p50;
    if (p === undefined) return 0;
    if (phase !== "paid") return p;
    return Math.max(0, p - (step?.phases?.verify?.p50 ?? 0) - (step?.phases?.settle?.p50 ?? 0));
  };
  const growth = LIMIT_PHASES.map((phase) => ({
    phase,
    at: own(failing, phase),
    grew: own(failing, phase) - own(held, phase),
  })).sort((a, b) => b.grew - a.grew);
  const top = growth[0];
  const cpu = failing.cpu;
  const ours = cpu ? (cpu.harness ?? 0) + (cpu.anvil ?? 0) : 0;
  const busy = cpu ? Math.max(ours, cpu.machine ?? 0) : 0;
  const others = cpu?.machine == null ? 0 : Math.max(0, cpu.machine - ours);
  const cpuWords = cpu
    ? `CPU: harness ${cpu.harness ?? "?"} cores, anvil ${cpu.anvil ?? "?"} cores${
        cpu.machine == null ? "" : `, other processes ${Math.round(others * 100) / 100} cores`
      } of ${cpu.cores}`
    : undefined;
  const failedWords = `${failing.rate}/s failed ${failing.failed.join("; ")}`;
  if (!top || top.at === 0) {
    return {
      resource: cpu && busy >= 0.9 * cpu.cores ? "cpu" : "unknown",
      reason: [failedWords, "no phase latency was measured", cpuWords].filter(Boolean).join("; "),
      rate: failing.rate,
    };
  }
  const since = held ? `, up ${ms(top.grew)} from ${held.rate}/s` : "";
  const settling = top.phase === "settle" ? settlementWait(failing.settlementLoad) : undefined;
  const { resource, what } = settling ?? PHASE_RESOURCE[top.phase];
  const phaseWords = `${what} grew most: ${top.phase} p50 ${ms(top.at)}${since}`;
  // Every phase slows when the cores are all taken; then the machine, not one part, is what ran out.
  const saturated = cpu !== undefined && busy >= 0.9 * cpu.cores;
  // Someone else's load took the cores: the figures say how busy the machine was, not what this stack holds.
  const crowded = saturated && others > ours;
  return {
    resource: saturated ? "cpu" : resource,
    reason: [
      failedWords,
      crowded
        ? `the machine's cores were all busy, mostly with other processes (rerun on a quiet machine); ${phaseWords}`
        : saturated
          ? `the machine's cores were all busy, and ${phaseWords}`
          : phaseWords,
      cpuWords,
    ]
      .filter(Boolean)
      .join("; "),
    rate: failing.rate,
  };
}

/** The search's outcome in words; never "none/s". */
export function capacityHeadline(result: CapacityResult): string {
  if (result.highestRate !== null) return `highest rate that held ${result.highestRate}/s`;
  const lowest = result.steps[0]?.rate;
  return lowest === undefined ? "no step ran" : `no rate held; the lowest tried was ${lowest}/s`;
}

/** Gas per settlement and settlements per transaction of a step, as `61,234 gas ×1.8`. */
export function stepGas(step: CapacityStep): string | undefined {
  const chain = step.chain;
  if (!chain || chain.settlements === 0 || chain.transactions === 0) return undefined;
  const gas = Math.round(Number(BigInt(chain.gasUsed)) / chain.settlements);
  const batch = Math.round((chain.settlements / chain.transactions) * 10) / 10;
  return `${gas.toLocaleString("en-US")} gas ×${batch}`;
}

/** How a step's runs voted, as ` (2 of 3 runs held; p99 812, 1043, 790 ms)`; empty for a single run. */
export function trialWords(step: CapacityStep): string {
  const trials = step.trials;
  if (!trials) return "";
  const agreed = trials.filter((t) => t.ok === step.ok).length;
  const p99s = trials.map((t) => (t.p99 === null ? "-" : String(Math.round(t.p99)))).join(", ");
  return ` (${agreed} of ${trials.length} runs ${step.ok ? "held" : "failed"}; p99 ${p99s} ms)`;
}

/**
 * The search as a terminal table: one line per step (ramp, then bisection) with its rate, achieved rate,
 * latency, CPU and verdict; then what limited it and what settling cost at the knee.
 */
export function formatCapacity(result: CapacityResult): string {
  const cell = (value: number | null | undefined) => String(value ?? "-").padStart(10);
  const extended = result.steps.some((s) => s.phase !== undefined || s.cpu !== undefined);
  const verdict = (s: CapacityStep) => `${s.ok ? "held" : `failed: ${s.failed.join("; ")}`}${trialWords(s)}`;
  const lines = [`${result.scenario}: ${capacityHeadline(result)}`];
  if (!extended) {
    lines.push(
      "      rate  achieved    p50 ms    p99 ms",
      ...result.steps.map(
        (s) => `${cell(s.rate)}${cell(s.achieved)}${cell(s.p50)}${cell(s.p99)}  ${verdict(s)}`,
      ),
      "",
    );
    return lines.join("\n");
  }
  const bisected = result.steps.some((s) => s.phase === "bisect");
  if (bisected && result.highestRate !== null) {
    lines.push(
      `knee ${result.highestRate}/s: bisected between the ramp's last rate that held and its first that failed`,
    );
  }
  lines.push("  step      rate  achieved    p50 ms    p99 ms  cores harness/anvil/machine    gas/settlement");
  for (const s of result.steps) {
    const cpu = (
      s.cpu ? `${s.cpu.harness ?? "-"}/${s.cpu.anvil ?? "-"}/${s.cpu.machine ?? "-"}` : "-"
    ).padStart(29);
    lines.push(
      `${(s.phase ?? "ramp").padStart(6)}${cell(s.rate)}${cell(s.achieved)}${cell(s.p50)}${cell(s.p99)}${cpu}${(stepGas(s) ?? "-").padStart(18)}  ${verdict(s)}`,
    );
  }
  if (result.limit) lines.push(`limited by ${result.limit.resource}: ${result.limit.reason}`);
  for (const note of result.notes ?? []) lines.push(`note: ${note}`);
  if (result.cost) {
    const c = result.cost;
    lines.push(
      `cost at ${result.highestRate}/s: ${c.gasPerSettlement ?? "-"} gas per settlement (measured), ${c.settlementsPerTransaction ?? "-"} per transaction; $${c.usdPer1000Settlements.total} per 1,000 settlements (L2 $${c.usdPer1000Settlements.l2} at ${c.prices.l2BaseFeeGwei} gwei, L1 data $${c.usdPer1000Settlements.l1}, ${c.prices.l1.source}) at $${c.prices.ethUsd}/ETH; ${c.ethPerHour.perRelayer} ETH per relayer per hour (${c.prices.relayers} relayers)`,
    );
  }
  lines.push("");
  return lines.join("\n");
}
