import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { ARTILLERY_ENV, PACKAGE_ROOT } from "./install.ts";

export type LaunchOptions = {
  /** Artillery's CLI (`ensureArtillery`). */
  bin: string;
  script: string;
  /** Where Artillery writes its JSON report (`-o`). */
  report: string;
  /** Local worker threads (default: Artillery's own choice, cpus−1). */
  workers?: number;
  /** Secrets and settings for the workers (the funder key). */
  env?: Record<string, string>;
  /** Ctrl-C: Artillery is asked to stop (SIGINT), then killed if it has not within `graceMs`. */
  signal?: AbortSignal;
  graceMs?: number;
  /** Artillery's console output, line by line (its progress every 10 s and its summary). */
  onOutput?: (line: string) => void;
};

// From the sources, which the package ships: the build (dist) holds no copy of a .cjs file.
const workerCountPatch = join(PACKAGE_ROOT, "src", "scenario", "artillery", "worker-count.cjs");

/**
 * Runs `artillery run SCRIPT -o REPORT` and resolves to its exit code and its last lines of output.
 * Artillery runs in a process group of its own: a terminal's Ctrl-C reaches the harness, which stops it
 * once (a second SIGINT would make Artillery quit without its report); the harness exiting takes it down.
 */
export async function launchArtillery(
  options: LaunchOptions,
): Promise<{ code: number | null; tail: string[] }> {
  const child = spawn(process.execPath, [options.bin, "run", options.script, "-o", options.report], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...ARTILLERY_ENV,
      // The processor loads the native secp256k1 signer from here; without it, the pure-JS one.
      NODE_PATH: join(PACKAGE_ROOT, "node_modules"),
      ...(options.workers
        ? {
            NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${workerCountPatch}`.trim(),
            X402_ARTILLERY_WORKERS: String(options.workers),
          }
        : {}),
      ...options.env,
    },
  });
  const kill = () => child.kill("SIGKILL");
  process.on("exit", kill);
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
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    child.kill("SIGINT");
    timer = setTimeout(kill, options.graceMs ?? 30_000);
  };
  if (options.signal?.aborted) stop();
  else options.signal?.addEventListener("abort", stop, { once: true });
  try {
    const [code] = (await once(child, "close")) as [number | null];
    if (partial) tail.push(partial);
    return { code, tail };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", stop);
    process.off("exit", kill);
  }
}
