import "./polyfills.ts";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Instance } from "prool";
import { onExit } from "signal-exit";
import { AnvilBinaryMissingError, AnvilStartError, PortInUseError } from "./errors.ts";
import { type Miner, startMiner } from "./miner.ts";

export type AnvilParameters = {
  /** Path to the anvil binary; defaults to `$ANVIL_BINARY`, then the one `@foundry-rs/anvil` installed. */
  binary?: string;
  host?: string;
  port: number;
  chainId?: number;
  /** Seconds between blocks (fractions allowed); absent means automine. */
  blockTime?: number;
  gasLimit?: bigint;
  /** EVM rules by anvil's name (`cancun`, `prague`, …); absent: anvil's default, or the fork's. */
  hardfork?: string;
  forkUrl?: string;
  forkBlockNumber?: bigint;
  /**
   * Keep the state of only the newest {@link PRUNED_STATES} blocks (`--prune-history`): reads at older blocks
   * and deeper reorgs fail, and memory grows with the chain's blocks and state, not with copies of its
   * state per block. Interval blocks are then mined by {@link startMiner}, since anvil's own interval mining
   * overrides the limit.
   */
  pruneHistory?: boolean;
  /** Told anvil's process id once it is spawned, so its memory can be watched. */
  onSpawn?: (pid: number) => void;
};

/** States a pruned anvil keeps: a read at "latest" racing a new block, and the reorg faults, fit well inside. */
export const PRUNED_STATES = 16;

const PLATFORM_PACKAGES: Record<string, string> = {
  "linux-x64": "@foundry-rs/anvil-linux-amd64",
  "linux-arm64": "@foundry-rs/anvil-linux-arm64",
  "darwin-x64": "@foundry-rs/anvil-darwin-amd64",
  "darwin-arm64": "@foundry-rs/anvil-darwin-arm64",
  "win32-x64": "@foundry-rs/anvil-win32-amd64",
};

/** Finds the anvil binary that npm installed as `@foundry-rs/anvil`'s platform package. */
export function resolveAnvilBinary(): string {
  const fromEnv = process.env.ANVIL_BINARY;
  if (fromEnv) {
    if (existsSync(fromEnv)) return fromEnv;
    throw new AnvilBinaryMissingError(`ANVIL_BINARY points at ${fromEnv}, which does not exist.`);
  }
  const pkg = PLATFORM_PACKAGES[`${process.platform}-${process.arch}`];
  const hint =
    "Run `npm install` in the project (the optional dependency @foundry-rs/anvil brings the binary), or set ANVIL_BINARY=/path/to/anvil.";
  if (!pkg)
    throw new AnvilBinaryMissingError(`No anvil build for ${process.platform}-${process.arch}.`, hint);
  try {
    const dir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
    const binary = join(dir, "bin", process.platform === "win32" ? "anvil.exe" : "anvil");
    if (existsSync(binary)) return binary;
  } catch {
    // fall through to the error below: the package is not installed
  }
  throw new AnvilBinaryMissingError(`The anvil binary (${pkg}) is not installed.`, hint);
}

/**
 * Resolves when nothing listens on host:port, so a bind error never races a stranger's reply; a busy port
 * is a {@link PortInUseError} naming `flag`, the option that chose it.
 */
export async function assertPortFree(host: string, port: number, flag = "--port"): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new PortInUseError(
              `Port ${port} on ${host} is already in use.`,
              `Pass another ${flag}, or stop what holds it.`,
            )
          : error,
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

const CACHE_PREFIX = "x402-devnet-anvil-";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A state cache of our own for one anvil, under the OS temp dir and named after this process. anvil's
 * default, `~/.foundry/anvil/tmp`, keeps every state it spills to disk after it is stopped, whether by
 * SIGTERM or SIGKILL: a day of runs left 424 directories and 77 GB there. Caches whose harness process
 * died without removing them (SIGKILL, a crash) are swept here, by the next harness to start an anvil.
 */
function createAnvilCacheDir(): string {
  const root = tmpdir();
  for (const name of readdirSync(root)) {
    const owner = name.startsWith(CACHE_PREFIX) ? Number(name.slice(CACHE_PREFIX.length).split("-")[0]) : 0;
    if (owner > 0 && owner !== process.pid && !isAlive(owner))
      rmSync(join(root, name), { recursive: true, force: true });
  }
  return mkdtempSync(join(root, `${CACHE_PREFIX}${process.pid}-`));
}

function toArgs(p: AnvilParameters, host: string, port: number, cacheDir: string): string[] {
  // --silent: anvil otherwise logs every transaction to stdout, megabytes over a load run, all of which
  // a parent that pipes it must drain. Readiness is therefore detected over RPC, not from a log line.
  const args = [
    "--host",
    host,
    "--port",
    String(port),
    "--accounts",
    "0",
    "--silent",
    "--cache-path",
    cacheDir,
  ];
  if (p.chainId !== undefined) args.push("--chain-id", String(p.chainId));
  if (p.blockTime !== undefined)
    args.push(...(p.pruneHistory ? ["--no-mining"] : ["--block-time", String(p.blockTime)]));
  if (p.gasLimit !== undefined) args.push("--gas-limit", String(p.gasLimit));
  if (p.hardfork !== undefined) args.push("--hardfork", p.hardfork);
  if (p.forkUrl !== undefined) args.push("--fork-url", p.forkUrl, "--retries", "2", "--timeout", "10000");
  if (p.forkBlockNumber !== undefined) args.push("--fork-block-number", String(p.forkBlockNumber));
  if (p.pruneHistory) args.push("--prune-history", String(PRUNED_STATES));
  return args;
}

async function answersRpc(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
    });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * anvil as a prool instance. prool's own `anvil` instance waits for anvil's "Listening on" log line, so it
 * cannot run anvil with `--silent`, and it buffers everything anvil prints; this one runs the binary
 * directly, silent, and waits until the RPC answers.
 */
export const anvilInstance = Instance.define((parameters: AnvilParameters) => {
  const host = parameters.host ?? "127.0.0.1";
  let child: ChildProcess | undefined;
  let miner: Miner | undefined;

  return {
    name: "anvil",
    host,
    port: parameters.port,
    async start({ port = parameters.port }, { emitter }) {
      const binary = parameters.binary ?? resolveAnvilBinary();
      await assertPortFree(host, port);
      const cacheDir = createAnvilCacheDir();
      const removeCache = () => rmSync(cacheDir, { recursive: true, force: true });
      // A process group of its own: a Ctrl-C typed in a terminal goes to the whole foreground group, and
      // anvil must outlive it long enough for the run to check the chain and report; we stop it ourselves.
      const proc = spawn(binary, toArgs(parameters, host, port, cacheDir), {
        stdio: ["ignore", "ignore", "pipe"],
        detached: true,
      });
      child = proc;
      proc.once("error", removeCache);
      if (proc.pid !== undefined) parameters.onSpawn?.(proc.pid);
      // A devnet must not outlive the process that started it, whether that process ends or is signalled.
      const removeExitHook = onExit(() => {
        proc.kill("SIGKILL");
        removeCache();
      });
      proc.once("exit", () => {
        removeExitHook();
        removeCache();
        void miner?.stop();
      });
      let stderr = "";
      proc.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000);
        emitter.emit("stderr", chunk.toString());
      });
      const exited = new Promise<never>((_, reject) => {
        proc.once("error", (error) => reject(new AnvilStartError(`anvil could not start: ${error.message}`)));
        proc.once("exit", (code, signal) => {
          emitter.emit("exit", code, signal);
          const reason = stderr.trim() || `exit code ${code ?? signal}`;
          reject(
            /already in use/i.test(reason)
              ? new PortInUseError(`Port ${port} on ${host} is already in use.`)
              : new AnvilStartError(`anvil exited during start: ${reason}`),
          );
        });
      });
      const url = `http://${host}:${port}`;
      exited.catch(() => {}); // an exit after start is the stop path's business, not an unhandled rejection
      const ready = (async () => {
        while (!(await answersRpc(url))) {
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      await Promise.race([ready, exited]);
      if (proc.exitCode !== null || proc.signalCode !== null) await exited;
      if (parameters.pruneHistory && parameters.blockTime !== undefined) {
        miner = startMiner(url, parameters.blockTime * 1000);
      }
      emitter.emit("listening");
    },
    async stop() {
      await miner?.stop();
      miner = undefined;
      const proc = child;
      child = undefined;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
      });
    },
  };
});
