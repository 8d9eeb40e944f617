import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { Address } from "viem";
import { DEFAULT_MNEMONIC, type DevnetClient, deriveAccounts } from "../../chain/index.ts";
import { type CostOptions, costOf, costPrices, readL1FeeParams } from "../cost.ts";
import type { ScenarioDefinition } from "../define.ts";
import type { EngineSettings, LoadEngine, RunPlan } from "../engine.ts";
import { type LoadSpec, loadSpecOf } from "../load-spec.ts";
import type { InvariantResult, MeasuredReport, RunReport } from "../report.ts";
import {
  costOptionsOn,
  describeRun,
  devnetConfig,
  judged,
  measuredFigures,
  PostRunSteps,
  type RunError,
} from "../run-steps.ts";
import { type RunSample, startSampler } from "../steady-state.ts";
import type { RunTarget } from "../target.ts";
import { parseThreshold, type Threshold } from "../thresholds.ts";
import { ScenarioInputError } from "../validate.ts";
import { bundleProcessor } from "./bundle.ts";
import { ensureArtillery } from "./install.ts";
import { ARTILLERY_HD, type ArtilleryJob, FUNDER_KEY_ENV, JOB_VARIABLE } from "./job.ts";
import { launchArtillery, partialReportOf } from "./launch.ts";
import { ArtilleryMetrics, type ArtilleryReport, artilleryReportProblem, PERIOD_SECONDS } from "./metrics.ts";
import { artilleryScript, ensureConditions } from "./script.ts";
import { checkArtilleryRun } from "./verify.ts";
import { agentMnemonic } from "./worker-wallets.ts";

/** The files a run is made of, in its directory. */
export const FILES = {
  script: "x402.artillery.json",
  processor: "x402-processor.cjs",
  report: "artillery-report.json",
};

/** Wei per agent wallet on a Permit2 path, for its `approve` transaction: plenty at a devnet's gas price. */
const APPROVAL_ETH = 10n ** 16n;

export type ArtilleryEngineOptions = {
  /** Local worker threads (default Artillery's: cpus−1). */
  workers?: number;
  /** Where to write the script, the processor and Artillery's report (default a temporary directory, removed after). */
  dir?: string;
  /** Artillery's install and console output, line by line. */
  log?: (line: string) => void;
};

/** The job's thresholds and ensure conditions, and what the script file holds. */
export async function writeArtilleryFiles(
  dir: string,
  job: Omit<ArtilleryJob, "zeroCounters" | "thresholds">,
  thresholds: readonly Threshold[],
): Promise<{ job: ArtilleryJob; unmapped: string[] }> {
  const { conditions, counters, unmapped } = ensureConditions(thresholds);
  const full: ArtilleryJob = { ...job, zeroCounters: counters, thresholds: thresholds.map((t) => t.expr) };
  await mkdir(dir, { recursive: true });
  await bundleProcessor(join(dir, FILES.processor));
  const script = artilleryScript(full, conditions, FILES.processor);
  await writeFile(join(dir, FILES.script), `${JSON.stringify(script, null, 2)}\n`);
  return { job: full, unmapped };
}

/** The job as the script holds it: the inverse of {@link writeArtilleryFiles}'s `variables`. */
export async function readArtilleryJob(scriptPath: string): Promise<ArtilleryJob> {
  const script = JSON.parse(await readFile(scriptPath, "utf8")) as {
    config?: { variables?: Record<string, string> };
  };
  const raw = script.config?.variables?.[JOB_VARIABLE];
  if (typeof raw !== "string")
    throw new Error(`${scriptPath} is not a script x402-devnet wrote (no x402Job)`);
  return JSON.parse(raw) as ArtilleryJob;
}

/** Artillery's JSON report, or undefined when it wrote none; throws when the file is not one. */
export async function readArtilleryReport(path: string): Promise<ArtilleryReport | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  const report = JSON.parse(text) as unknown;
  const problem = artilleryReportProblem(report);
  if (problem) throw new Error(`${path} is not an Artillery report: ${problem}`);
  return report as ArtilleryReport;
}

/** An Artillery run's report, judged: the figures from Artillery's report, the verdict from the chain. */
export async function judgeArtilleryRun(input: {
  scenario: Pick<ScenarioDefinition, "name" | "description">;
  job: ArtilleryJob;
  artillery: ArtilleryReport | undefined;
  client: DevnetClient;
  /** The report's config, besides what the job says. */
  config: Record<string, unknown>;
  startedAt: Date;
  samples: readonly RunSample[];
  interrupted: boolean;
  /** Artillery failed to run or to report: the step, named in the report. */
  failure?: RunError;
  warnings?: string[];
  mnemonic: string;
  rpcUrl: string;
  /** Prices for the cost per settlement, with the relayer keys that sent the settlements when known. */
  cost?: CostOptions;
  stepDeadlineMs?: number;
}): Promise<RunReport> {
  const { job, client } = input;
  const metrics = new ArtilleryMetrics(
    input.artillery ?? { aggregate: { counters: {}, summaries: {} }, intermediate: [] },
  );
  const counter = (name: string) => metrics.counter(name);
  const failedVus = counter("vusers.failed");
  const vuErrors = Object.entries(metrics.counters)
    .filter(([name, value]) => name.startsWith("errors.") && value > 0)
    .map(([name, value]) => `${name.slice("errors.".length)} ×${value}`);
  const measured: MeasuredReport = {
    scenario: input.scenario.name,
    description: `${input.scenario.description} (${describeRun(job.spec.agents, job.spec.model, 0, "on Artillery")})`,
    config: {
      agents: job.spec.agents,
      load: job.spec.model,
      engine: "artillery",
      ...input.config,
      serverUrl: job.server.url,
      dropped: counter("vusers.skipped"),
      abandoned: 0,
    },
    seed: job.spec.seed,
    runId: job.runId,
    startedAt: input.startedAt.toISOString(),
    durationMs: Math.round(metrics.durationMs),
    interrupted: input.interrupted,
    ...measuredFigures(metrics, metrics.durationMs, input.samples, PERIOD_SECONDS),
    warnings: [
      ...(input.warnings ?? []),
      ...(counter("vusers.skipped") > 0
        ? [`${counter("vusers.skipped")} arrivals were skipped: maxVusers were already running`]
        : []),
    ],
    chain: {
      startBlock: Number(job.fromBlock),
      endBlock: Number(job.fromBlock),
      settlements: 0,
      settlementTransactions: 0,
      gasUsed: "0",
    },
  };
  const steps = new PostRunSteps(input.stepDeadlineMs, input.interrupted);
  if (input.failure) steps.error = input.failure;
  const invariants: InvariantResult[] = [];
  if (input.artillery) {
    invariants.push({
      name: "every virtual user ran to its end",
      ok: failedVus === 0,
      detail:
        failedVus === 0
          ? `${counter("vusers.completed")} completed`
          : `${failedVus} failed: ${vuErrors.slice(0, 5).join(", ") || "no error named"}`,
    });
    const toBlock = await steps.step("read the end block", () => client.getBlockNumber({ cacheTime: 0 }));
    if (toBlock !== undefined) {
      const checks = await steps.step("check the money invariants", () =>
        checkArtilleryRun({
          client,
          metrics,
          job,
          mnemonic: input.mnemonic,
          fromBlock: BigInt(job.fromBlock) + 1n,
          toBlock,
        }),
      );
      if (checks) {
        invariants.push(...checks.invariants);
        measured.chain = checks.chain;
        measured.config.wallets = checks.wallets;
      }
    }
    await steps.step("price the settlements", async () => {
      const l1 = await readL1FeeParams(client, input.rpcUrl).catch(() => undefined);
      measured.cost = costOf(measured, costPrices(input.cost ?? {}, l1));
    });
  }
  return judged(
    { ...measured, invariants, ...(steps.error ? { error: steps.error } : {}) },
    job.thresholds.map(parseThreshold),
  );
}

/**
 * The Artillery engine: the scenario's agents run as Artillery virtual users on local worker threads,
 * against the target `runScenario` started (or the user's). The run funds a funder wallet on the devnet;
 * each worker funds its own slot of agent wallets from it, then Artillery runs the phases and merges the
 * workers' metrics into its report, which is judged on chain like an in-process run.
 */
export function artilleryEngine(options: ArtilleryEngineOptions = {}): LoadEngine {
  const log = options.log ?? (() => {});
  const workers = options.workers ?? Math.max(1, cpus().length - 1);
  return {
    name: "Artillery",
    check(scenario: ScenarioDefinition, plan: RunPlan): void {
      loadSpecOf(scenario, { model: plan.model, agents: plan.agentCount, seed: plan.seed }, "Artillery");
      const { model } = plan;
      const rates = model?.kind === "open" ? [model.startRate ?? 0, ...model.stages.map((s) => s.rate)] : [];
      const fractional = rates.find((rate) => !Number.isInteger(rate));
      if (fractional !== undefined) {
        throw new ScenarioInputError(
          `Artillery's phases take whole arrivals per second, and divide them among its workers; a rate of ${fractional}/s cannot be given: use a whole rate`,
        );
      }
      if (Math.ceil(plan.agentCount / workers) > ARTILLERY_HD.slotSize) {
        throw new ScenarioInputError(
          `${plan.agentCount} agents on ${workers} workers is more than the ${ARTILLERY_HD.slotSize} wallets a worker holds: use more workers or fewer agents`,
        );
      }
    },
    async run(scenario: ScenarioDefinition, overrides: EngineSettings, target: RunTarget, plan: RunPlan) {
      const spec: LoadSpec = loadSpecOf(
        scenario,
        { model: plan.model, agents: plan.agentCount, seed: plan.seed },
        "Artillery",
      );
      const bin = await ensureArtillery(log);
      const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "x402-artillery-")));
      try {
        const { devnet } = target;
        const [funder] = deriveAccounts(DEFAULT_MNEMONIC, 1, ARTILLERY_HD.funder);
        if (!funder) throw new Error("could not derive the funder wallet");
        const walletsPerWorker = Math.ceil(plan.agentCount / workers);
        const wallets = BigInt(workers * walletsPerWorker);
        const eth = spec.permit2Allowance ? APPROVAL_ETH : 0n;
        await devnet.fund([funder.address], {
          eth: 10n ** 20n + eth * wallets,
          usdc: BigInt(spec.usdc) * wallets,
        });
        const fromBlock = await devnet.client.getBlockNumber({ cacheTime: 0 });
        const { job, unmapped } = await writeArtilleryFiles(
          dir,
          {
            version: 1,
            runId: randomUUID(),
            spec,
            server: { url: target.serverUrl, fixed: target.fixedUrl },
            chain: {
              rpcUrl: devnet.rpcUrl,
              chainId: devnet.chainId,
              usdc: { address: devnet.usdc.address, name: devnet.usdc.name, version: devnet.usdc.version },
            },
            walletsPerWorker,
            eth: eth.toString(),
            fromBlock: fromBlock.toString(),
            payees: [...target.payees] as Address[],
          },
          plan.thresholds,
        );
        const startedAt = new Date();
        const sampler = startSampler(devnet.client, devnet.pid);
        const reportPath = join(dir, FILES.report);
        let failure: RunError | undefined;
        const launched = await launchArtillery({
          bin,
          script: join(dir, FILES.script),
          report: reportPath,
          workDir: dir,
          workers,
          env: { [FUNDER_KEY_ENV]: funder.privateKey },
          signal: overrides.signal,
          onOutput: overrides.progress === false ? undefined : (line) => log(line),
        }).catch((error: unknown) => {
          failure = { step: "run artillery", message: (error as Error).message };
          return undefined;
        });
        const samples = await sampler.stop();
        // Stopped early, Artillery writes no report of its own: the periods it merged until then stand in.
        const artillery = await readArtilleryReport(reportPath)
          .then(async (report) => report ?? (await readArtilleryReport(partialReportOf(dir))))
          .catch((error: unknown) => {
            failure ??= { step: "read Artillery's report", message: (error as Error).message };
            return undefined;
          });
        if (!artillery && !failure) {
          failure = {
            step: "run artillery",
            message: `artillery exited ${launched?.code} without a report:\n${(launched?.tail ?? []).slice(-10).join("\n")}`,
          };
        }
        return await judgeArtilleryRun({
          scenario,
          job,
          artillery,
          client: devnet.client,
          config: {
            workers,
            walletsPerWorker,
            devnet: devnetConfig(devnet),
            facilitatorUrl: target.facilitatorUrl,
            routes: target.routes,
            ignored: plan.ignored,
            ...(options.dir ? { files: options.dir } : {}),
          },
          startedAt,
          samples,
          interrupted: overrides.signal?.aborted === true,
          ...(failure ? { failure } : {}),
          warnings: unmapped.length
            ? [
                `Artillery's ensure cannot check ${unmapped.join(", ")}: the harness judges them from its report`,
              ]
            : [],
          mnemonic: agentMnemonic(),
          rpcUrl: devnet.rpcUrl,
          cost: costOptionsOn(target, overrides.cost),
          stepDeadlineMs: overrides.stepDeadlineMs,
        });
      } finally {
        if (!options.dir) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
