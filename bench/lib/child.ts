import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export type ChildServer<T> = { info: T; pid: number; stop(): Promise<void> };

/**
 * Runs `entry` (a TypeScript file in bench/servers) in its own node process, so the server under test and
 * the load generator do not share an event loop, and waits for the one JSON line it prints when ready.
 * `BENCH_NODE_ARGS` adds node flags to every server (e.g. `--cpu-prof --cpu-prof-dir=bench/results/prof`).
 */
export async function startChild<T>(entry: string, config: unknown): Promise<ChildServer<T>> {
  const file = fileURLToPath(new URL(`../servers/${entry}`, import.meta.url));
  const extra = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [...extra, "--import", "tsx", file, JSON.stringify(config)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const info = await new Promise<T>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once("line", (line) => {
      try {
        resolve(JSON.parse(line) as T);
      } catch (error) {
        reject(error);
      }
    });
    child.once("exit", (code) => reject(new Error(`${entry} exited with ${code} before it was ready`)));
  });
  return {
    info,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // Closing stdin asks the server to stop cleanly (and write its CPU profile, if one is being taken).
      child.stdin?.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** In a server entry: the JSON config from argv, and a stop hook run when the parent closes stdin. */
export function serverMain<C>(onStop: () => Promise<void>): C {
  const config = JSON.parse(process.argv[2] ?? "{}") as C;
  process.stdin.resume();
  process.stdin.once("end", () => {
    void onStop().finally(() => process.exit(0));
  });
  return config;
}

/** Reads the CPU time (user + system, seconds) of a process from /proc, when there is one. */
async function cpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const { readFile } = await import("node:fs/promises");
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100;
  } catch {
    return undefined;
  }
}

/** CPU cores each process used between `start()` and `stop()` (Linux; undefined elsewhere). */
export function cpuMeter(pids: Record<string, number | undefined>) {
  let before: Record<string, number | undefined> = {};
  let startedAt = 0;
  return {
    async start() {
      startedAt = performance.now();
      before = Object.fromEntries(
        await Promise.all(
          Object.entries(pids).map(async ([k, pid]) => [k, pid ? await cpuSeconds(pid) : undefined]),
        ),
      );
    },
    async stop(): Promise<Record<string, number | undefined>> {
      const seconds = (performance.now() - startedAt) / 1000;
      const out: Record<string, number | undefined> = {};
      for (const [k, pid] of Object.entries(pids)) {
        const a = before[k];
        const b = pid ? await cpuSeconds(pid) : undefined;
        out[k] = a === undefined || b === undefined ? undefined : Math.round(((b - a) / seconds) * 100) / 100;
      }
      return out;
    },
  };
}
