import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { defineScenario } from "../../src/scenario/index.ts";

const BIN = new URL("../../src/bin.js", import.meta.url).pathname;

/** `x402-devnet scenario …` in a child process, to its exit: what a CI job would see. */
export const scenarioCli = (args: string[]) => x402Cli("scenario", args);

/** `x402-devnet COMMAND …` in a child process, to its exit. */
export async function x402Cli(
  command: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, command, ...args], { stdio: "pipe" });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

/** A few agents paying GET /weather for a moment, with a threshold that holds on a healthy stack. */
export const smallScenario = (agents: number, durationMs: number) =>
  defineScenario({
    name: "small",
    description: "a few agents for a moment",
    agents: { count: agents },
    target: "/weather",
    load: { kind: "closed", durationMs },
    thresholds: ["errors.rate < 0.01"],
  });

const REPO = new URL("../..", import.meta.url).pathname;

/** A process the CLI tests started, with what it printed so far. */
export type CliProcess = {
  child: ChildProcessWithoutNullStreams;
  output: { stdout: string; stderr: string };
  /**
   * The exit code (null when a signal ended it) and signal, once the process has ended and everything
   * holding its stdout and stderr has closed them: the output is complete by then.
   */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The first match of `pattern` in what `stream` printed; rejects if the process ends without one. */
  waitFor(stream: "stdout" | "stderr", pattern: RegExp): Promise<RegExpExecArray>;
};

const started = new Set<CliProcess>();

/** Each started process's tag, by pid: its descendants inherit the tag in their environment. */
const tags = new Map<number, string>();
const TAG = "X402_TEST_PROCESS";

/**
 * `command args` in a process group of its own, tagged in its environment, so that whatever it starts
 * (npm's grandchildren, and anvil, which runs in a group of its own and outlives a reparenting) can be
 * found in /proc and killed by {@link killStarted}.
 */
export function startProcess(command: string, args: string[], cwd = REPO): CliProcess {
  const tag = randomUUID();
  const child = spawn(command, args, {
    cwd,
    stdio: "pipe",
    detached: true,
    env: { ...process.env, [TAG]: tag },
  });
  tags.set(child.pid as number, tag);
  const output = { stdout: "", stderr: "" };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal })),
  );
  const cli: CliProcess = {
    child,
    output,
    exited,
    waitFor: (stream, pattern) =>
      new Promise((resolve, reject) => {
        const look = () => {
          const match = pattern.exec(output[stream]);
          if (match) {
            child[stream].off("data", look);
            resolve(match);
          }
          return match;
        };
        if (look()) return;
        child[stream].on("data", look);
        void exited.then(() => {
          if (!look()) reject(new Error(`exited without ${pattern} on ${stream}:\n${output.stderr}`));
        });
      }),
  };
  child.stdout.on("data", (chunk: Buffer) => {
    output.stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output.stderr += chunk.toString();
  });
  started.add(cli);
  void exited.then(() => {
    if (processesOf(child.pid as number).length === 0) started.delete(cli);
  });
  return cli;
}

/** `x402-devnet args` as a user's shell runs it. */
export const startCli = (args: string[], cwd?: string) => startProcess(process.execPath, [BIN, ...args], cwd);

/** For afterEach: SIGKILL to every process a test started and has not seen end, so no anvil outlives a test. */
export async function killStarted(): Promise<void> {
  for (const cli of started) {
    const pid = cli.child.pid as number;
    for (const member of processesOf(pid)) {
      try {
        process.kill(member.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await untilGone(pid, 10_000);
  }
  started.clear();
}

type ProcInfo = { pid: number; command: string; state: string; ppid: number };

/** The live (not zombie) processes a started process (`pid`) and its descendants run, from /proc. */
export function processesOf(pid: number): ProcInfo[] {
  const tag = tags.get(pid);
  if (!tag) throw new Error(`process ${pid} was not started by startProcess`);
  const marker = `${TAG}=${tag}\0`;
  const members: ProcInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    let environ: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      environ = readFileSync(`/proc/${entry}/environ`, "utf8");
    } catch {
      continue; // ended while we looked
    }
    if (!environ.includes(marker)) continue;
    // pid (comm) state ppid …; comm may hold spaces and parentheses, so split after its last ')'.
    const close = stat.lastIndexOf(")");
    const [state, ppid] = stat.slice(close + 2).split(" ");
    if (state === "Z" || state === "X") continue;
    members.push({
      pid: Number(entry),
      command: stat.slice(stat.indexOf("(") + 1, close),
      state: state as string,
      ppid: Number(ppid),
    });
  }
  return members;
}

/**
 * Resolves once no process that `pid` started is alive. Processes that are not our children give no exit event
 * to wait on, so /proc is read every 50 ms, up to `timeoutMs`; the rejection names who is left.
 */
export async function untilGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processesOf(pid);
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `still running after ${timeoutMs} ms: ${left.map((p) => `${p.pid} ${p.command}`).join(", ")}`,
      );
    }
    await delay(50);
  }
}

/** Whether anything listens on 127.0.0.1:port. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}
