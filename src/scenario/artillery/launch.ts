import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { ARTILLERY_ENV, PACKAGE_ROOT } from "./install.ts";
import { STOP_FILE_ENV } from "./job.ts";

export type LaunchOptions = {
  /** Artillery's CLI (`ensureArtillery`). */
  bin: string;
  script: string;
  /** Where Artillery writes its JSON report (`-o`). */
  report: string;
  /** A directory of the run's own, for the files the harness and Artillery's workers share. */
  workDir: string;
  /** Local worker threads (default: Artillery's own choice, cpus−1). */
  workers?: number;
  /** Secrets and settings for the workers (the funder key). */
  env?: Record<string, string>;
  /**
   * Ctrl-C: the workers stop sending (a stop file they watch), and once the period holding their last
   * requests is merged, Artillery is stopped (SIGINT); what it merged until then is its report.
   */
  signal?: AbortSignal;
  /** Artillery's console output, line by line (its progress every 10 s and its summary). */
  onOutput?: (line: string) => void;
};

/** Where an interrupted run's report is written instead of `-o` (see artillery-preload.cjs). */
export const partialReportOf = (workDir: string) => join(workDir, "artillery-partial-report.json");

// From the sources, which the package ships: the build (dist) holds no copy of a .cjs file.
const PRELOAD = join(PACKAGE_ROOT, "src", "scenario", "artillery", "artillery-preload.cjs");
/** Artillery merges and reports metrics in periods of this length. */
const PERIOD_MS = 10_000;
/** How long requests in flight at a stop may take to finish (as the in-process runner's drain). */
const DRAIN_MS = 5_000;
/** The longest wait, after a stop, for Artillery to merge the last period before it is stopped anyway. */
const MERGE_WAIT_MS = 35_000;
/** After SIGINT, how long Artillery has to write the partial report before it is killed. */
const KILL_AFTER_MS = 15_000;

/**
 * Runs `artillery run SCRIPT -o REPORT` and resolves to its exit code and its last lines of output.
 * Artillery runs in a process group of its own: a terminal's Ctrl-C reaches the harness, which stops it
 * in order (a SIGINT straight to Artillery would end the run without its report); the harness exiting
 * takes it down.
 */
export async function launchArtillery(
  options: LaunchOptions,
): Promise<{ code: number | null; tail: string[]; stopped: boolean }> {
  const periods = join(options.workDir, "artillery-periods.jsonl");
  const stopFile = join(options.workDir, "stop");
  const child = spawn(process.execPath, [options.bin, "run", options.script, "-o", options.report], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...ARTILLERY_ENV,
      // The processor loads the native secp256k1 signer from here; without it, the pure-JS one.
      NODE_PATH: join(PACKAGE_ROOT, "node_modules"),
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${PRELOAD}`.trim(),
      X402_ARTILLERY_PERIODS: periods,
      X402_ARTILLERY_PARTIAL: partialReportOf(options.workDir),
      [STOP_FILE_ENV]: stopFile,
      ...(options.workers ? { X402_ARTILLERY_WORKERS: String(options.workers) } : {}),
      ...options.env,
    },
  });
  const kill = () => child.kill("SIGKILL");
  process.on("exit", kill);
  const exited = once(child, "close") as Promise<[number | null]>;
  const tail: string[] = [];
  let partial = "";
  const onData = (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      options.onOutput?.(line);
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);

  let stopped = false;
  const stop = async () => {
    stopped = true;
    const stopAt = Date.now();
    await writeFile(stopFile, String(stopAt));
    // The last period with requests in it: once Artillery has merged it, nothing more is coming.
    const last = Math.floor((stopAt + DRAIN_MS) / PERIOD_MS) * PERIOD_MS;
    const merged = async () => {
      const lines = await readFile(periods, "utf8").catch(() => "");
      return lines
        .split("\n")
        .filter(Boolean)
        .some((line) => Number((JSON.parse(line) as { period?: unknown }).period) >= last);
    };
    const giveUp = Date.now() + MERGE_WAIT_MS;
    while (child.exitCode === null && Date.now() < giveUp && !(await merged())) await delay(250);
    if (child.exitCode !== null) return;
    child.kill("SIGINT");
    await Promise.race([exited, delay(KILL_AFTER_MS)]);
    kill();
  };
  let stopping: Promise<void> | undefined;
  const onAbort = () => {
    stopping ??= stop();
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const [code] = await exited;
    await stopping;
    if (partial) tail.push(partial);
    return { code, tail, stopped };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    process.off("exit", kill);
  }
}
