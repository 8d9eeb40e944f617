import { open, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import {
  ATTACH_ROLE,
  assertPortFree,
  createDevnetClient,
  DevnetError,
  HARDFORKS,
  type Hardfork,
  HISTORIES,
  type History,
  isHardfork,
  isHistory,
  isNetworkName,
  isProfileName,
  NETWORK_NAMES,
  NETWORKS,
  type NetworkName,
  PortInUseError,
  PROFILES,
  type ProfileName,
  probeRpcUrl,
} from "./chain/index.ts";
import { writeCloudRun } from "./scenario/artillery/cloud.ts";
import {
  artilleryEngine,
  judgeArtilleryRun,
  readArtilleryJob,
  readArtilleryReport,
} from "./scenario/artillery/engine.ts";
import { artilleryHome, ensureArtillery } from "./scenario/artillery/install.ts";
import { ARTILLERY_VERSION } from "./scenario/artillery/job.ts";
import { agentMnemonic } from "./scenario/artillery/worker-wallets.ts";
import { BaselineError, compareReports, loadBaseline } from "./scenario/baseline.ts";
import { formatCapacity } from "./scenario/capacity.ts";
import {
  checkOverrides,
  DEFAULT_ATTACH_RPC_URL,
  effectiveModel,
  findCapacity,
  formatSummary,
  loadScenario,
  optionalPositive,
  parseThreshold,
  type RunReport,
  runScenario,
  type ScenarioDefinition,
  scenarioNames,
} from "./scenario/index.ts";
import { renderCapacityHtml, renderHtmlReport } from "./scenario/report-html.ts";
import { paymentPathHandlers, paymentPathRoutes, startStack } from "./stack.ts";

/** A mistake in how the CLI was called: one line, a pointer to the command's help, exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
  constructor(
    message: string,
    readonly pointToHelp = true,
  ) {
    super(message);
  }
}

/**
 * Errors that are the user's to fix, printed as their message alone. Matched by name, not class: a
 * scenario file imports the installed package's build, whose classes are not this source's.
 */
const HARNESS_ERRORS = new Set([
  "UsageError",
  "ScenarioInputError",
  "ThresholdSyntaxError",
  "UnknownScenarioError",
  "TargetError",
  "ArtilleryError",
]);
/** Of those, the ones about how the CLI was called, which the command's help can answer. */
const HELPFUL_ERRORS = new Set(["UsageError", "ScenarioInputError"]);

const USAGE = `Usage: x402-devnet <command> [options]

Commands:
  up                    Start a Base devnet (chain 8453, or Base Sepolia's 84532 with --network
                        base-sepolia) with its USDC and Multicall3 at their addresses, the reference
                        facilitator and the reference resource server (GET /weather for $0.001), and
                        keep them running until stopped.
  scenario [NAME|FILE]  Run a scenario on a fresh local stack, or against your own server or
                        facilitator; exit 0 pass, 1 fail, 2 harness error.
  artillery [NAME|FILE] Run a scenario's agents as Artillery virtual users on worker threads (Artillery
                        is installed on first use), or write its files for AWS Fargate or Lambda;
                        judged on chain like scenario.

x402-devnet <command> --help shows a command's options.
`;

const SCENARIO_USAGE = `Usage: x402-devnet scenario [NAME | FILE] [options]

Runs a scenario (default per-request) on a fresh local stack, or against your own server or facilitator,
prints live progress and a summary, and exits 0 when every threshold and money invariant holds, 1 when
one fails, 2 on a harness error. NAME is one of --list; FILE is your own scenario (anything with a slash,
or ending in .ts, .mts, .js or .mjs, e.g. ./my-scenario.ts) whose default export is defineScenario({…})
from "x402-devnet". Ctrl-C or SIGTERM stops the load, reports what ran (the report says interrupted) and
exits 130 or 143; a second Ctrl-C exits at once.

Options:
  --list                list the scenarios with their descriptions
  --agents N            number of agents (overrides the scenario)
  --duration D          run time: 30s, 2m, 500ms (overrides the scenario)
  --rate R              constant arrival rate per second (an open model)
  --threshold EXPR      an extra threshold, e.g. "e2e.p99 < 50ms" (repeatable)
  --seed N              seed of the arrival schedule and think times
  --network NAME        the network the devnet runs as: base (chain 8453, the default) or
                        base-sepolia (chain 84532, with Base Sepolia's USDC); a fork's own with
                        --fork-url
  --profile NAME        the devnet's blocks: instant (automine, the latency floor), flashblocks
                        (0.2 s blocks, Base's preconfirmations) or base (2 s blocks); overrides the
                        scenario's
  --hardfork NAME       the devnet's EVM rules: cancun, prague or osaka (default: the profile's; a
                        fork's own with --fork-url)
  --history full|pruned state anvil keeps: full (reads at past blocks, reorgs) or pruned (the head
                        only, memory that stays low); default full under instant, else pruned
  --fork-url URL        run on a fork of this chain (real Base or Base Sepolia) instead of the mock
                        USDC
  --server-url URL      pay your resource server instead of ours: a paid route's URL (loaded as is)
                        or an origin (the scenario's paths); it must settle on the --rpc-url chain
  --facilitator-url URL have our server verify and settle through your facilitator, which settles on
                        the --rpc-url chain
  --rpc-url URL         the running devnet to fund the agents on and check the money on (default
                        ${DEFAULT_ATTACH_RPC_URL}, what \`x402-devnet up\` starts, with --server-url
                        or --facilitator-url); alone, our facilitator and server run on that chain
  --find-capacity       ramp the arrival rate (x1.5 per 5 s step, or --duration per step) until a
                        threshold fails, then bisect to the knee; report it, what limited it, each
                        step's CPU and the cost per settlement at the knee
  --eth-price USD       ETH price for the cost per settlement (default 3000)
  --base-fee GWEI       L2 base fee for the cost per settlement (default 0.01); the L1 data fee's
                        prices come from a --fork-url/--rpc-url chain's GasPriceOracle, else defaults
  --json FILE           write the report as JSON
  --html FILE           write the report as a self-contained HTML page
  --baseline FILE       compare with an earlier --json report of the same scenario: e2e latency (a
                        rank test with a minimum effect) and cost per payment; exit 1 on a regression
  -h, --help            this help
`;

const ARTILLERY_USAGE = `Usage: x402-devnet artillery [NAME | FILE] [options]
       x402-devnet artillery report REPORT --script SCRIPT --rpc-url URL [--json FILE] [--html FILE]

Runs a scenario (default per-request) with Artillery ${ARTILLERY_VERSION} as the load engine: its agents run
as Artillery virtual users on local worker threads, each thread paying from wallets of its own (an HD
range reserved for Artillery, funded on the devnet before the load), and Artillery merges the threads'
metrics. The harness then reads Artillery's report and checks the money on chain for every wallet the
workers used, and prints the same summary and writes the same reports as \`x402-devnet scenario\`; exit
0 pass, 1 fail, 2 harness error. Artillery is not a dependency: the first run installs it (about 460 MB,
a minute) into node_modules/.cache, or into X402_ARTILLERY_HOME. Scenarios with cases, afterLoad, their
own invariants or a function target run in process only.

With --write DIR, nothing runs: the script and the bundled processor are written for \`artillery
run-fargate\` or \`run-lambda\` against your server (--server-url) and chain (--rpc-url), both reachable
from the cloud, with the commands to run it and to judge its report on chain (\`artillery report\`).

Options (besides scenario's --agents, --duration, --rate, --threshold, --seed, --network, --profile,
--hardfork, --history, --fork-url, --rpc-url, --server-url, --facilitator-url, --json, --html):
  --workers N           local worker threads (default: Artillery's, the cpus less one)
  --out DIR             keep the script, the processor and Artillery's report in DIR
  --write DIR           write the files for a cloud run instead of running (needs --server-url and
                        --rpc-url); the workers fund their wallets from X402_FUNDER_KEY
  --script FILE         (report) the script the run used, which holds its settings
  --install             install Artillery now (what the first run would do) and exit
  -h, --help            this help
`;

const UP_USAGE = `Usage: x402-devnet up [options]

Starts a Base devnet (chain 8453) with USDC and Multicall3 at their Base addresses, the reference
facilitator and the reference resource server (GET /weather for $0.001); with --network base-sepolia, a
Base Sepolia devnet (chain 84532, USDC at Base Sepolia's address under its EIP-712 name). When ready it
prints one JSON line ({"event":"ready", …}) on stdout, with the ports it took. It runs until SIGINT or
SIGTERM, or until the process that started it (npm, npx, a script) is gone, then stops everything and
exits 0.

Options:
  --port P              RPC port (default 8545; 0 takes a free one)
  --facilitator-port P  facilitator port (default 4022; 0 takes a free one)
  --server-port P       resource server port (default 4021; 0 takes a free one)
  --relayers N          settlement relayer keys (default 4)
  --network NAME        base (chain 8453, default) | base-sepolia (chain 84532); with --fork-url, the
                        forked chain's by default, and it must be that chain
  --profile NAME        instant (automine, default) | flashblocks (0.2 s blocks) | base (2 s blocks)
  --block-time S        seconds between blocks, fractions allowed (overrides --profile)
  --hardfork NAME       EVM rules: cancun | prague | osaka (default: cancun under instant and
                        flashblocks, osaka under base; the forked chain's own with --fork-url)
  --history full|pruned state anvil keeps: full (reads at past blocks, reorgs) or pruned (the head
                        only, memory that stays low); default full under instant, else pruned
  --accounts N          funded wallets to derive (default 10)
  --fork-url URL        fork this chain (real Base or Base Sepolia) instead of placing the mock USDC
  --fork-block N        block to fork at (with --fork-url)
  -h, --help            this help
`;

/**
 * parseArgs with the CLI's own words for its mistakes (node's are several lines, one with an unclosed
 * quote). A negative number after a flag (`--agents -3`) would read as an option: it is passed on as
 * `--agents=-3`, so it fails the number check in the same words as any other bad value.
 */
function parse<const O extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  argv: string[],
  options: O,
) {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg === "--") {
      args.push(...argv.slice(i));
      break;
    }
    if (
      arg.startsWith("--") &&
      options[arg.slice(2)]?.type === "string" &&
      next !== undefined &&
      /^-\.?\d/.test(next)
    ) {
      args.push(`${arg}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; strict: true; allowPositionals: true; options: O }>
  >;
  try {
    parsed = parseArgs({ args, strict: true, allowPositionals: true, options });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = error instanceof Error ? error.message : String(error);
    const quoted = /'([^' ]+)/.exec(message)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new UsageError(`unknown option ${quoted}`);
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      throw new UsageError(
        options[quoted.slice(2)]?.type === "boolean"
          ? `${quoted} takes no value`
          : `${quoted} needs a value; one that starts with a dash is written ${quoted}=VALUE`,
      );
    }
    throw new UsageError(message.split("\n")[0] ?? message);
  }
  if (command === "up" && parsed.positionals.length > 0) {
    throw new UsageError(`up takes no arguments, got ${parsed.positionals.join(" ")}`);
  }
  return parsed;
}

/** `--help` anywhere, even next to a mistake: help answers it rather than the mistake. */
const asksForHelp = (argv: readonly string[]) => {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h");
};

function portOption(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const port = raw.trim() === "" ? Number.NaN : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`${flag} must be a port from 0 to 65535 (0 takes a free one), got ${raw}`);
  }
  return port;
}

function networkOption(raw: string | undefined): NetworkName | undefined {
  if (raw === undefined || isNetworkName(raw)) return raw;
  throw new UsageError(`--network must be one of ${NETWORK_NAMES.join(", ")}, got ${raw}`);
}

function profileOption(raw: string | undefined): ProfileName | undefined {
  if (raw === undefined || isProfileName(raw)) return raw;
  throw new UsageError(`--profile must be one of ${Object.keys(PROFILES).join(", ")}, got ${raw}`);
}

/** anvil takes hardfork names in any case; the devnet runs Cancun and later (see HARDFORKS). */
function hardforkOption(raw: string | undefined): Hardfork | undefined {
  if (raw === undefined) return undefined;
  const name = raw.trim().toLowerCase();
  if (isHardfork(name)) return name;
  throw new UsageError(`--hardfork must be one of ${HARDFORKS.join(", ")}, got ${raw}`);
}

function historyOption(raw: string | undefined): History | undefined {
  if (raw === undefined || isHistory(raw)) return raw;
  throw new UsageError(`--history must be one of ${HISTORIES.join(", ")}, got ${raw}`);
}

const HOST = "127.0.0.1";

/**
 * Every port `up` binds, checked before anything starts: a busy facilitator or server port would
 * otherwise surface as a raw EADDRINUSE once the devnet has spent seconds starting.
 */
async function assertPortsFree(ports: readonly (readonly [flag: string, port: number])[]): Promise<void> {
  const taken = new Map<number, string>();
  for (const [flag, port] of ports) {
    if (port === 0) continue;
    const other = taken.get(port);
    if (other) throw new UsageError(`${flag} ${port} is the same port as ${other}`);
    taken.set(port, flag);
    try {
      await assertPortFree(HOST, port, flag);
    } catch (error) {
      if (error instanceof PortInUseError) throw error;
      throw new UsageError(`${flag} ${port}: ${(error as Error).message}`, false);
    }
  }
}

type StopSignal = "SIGINT" | "SIGTERM";
const SIGNAL_EXIT_CODE: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };
/** How often to look for a parent that went away; the check is one syscall. */
const PARENT_POLL_MS = 500;

/**
 * The ways a run is asked to stop: SIGINT, SIGTERM, or the process that started us going away. npm and
 * npx do not forward a SIGTERM to the command they run: killed, they leave it running under init (or a
 * subreaper), so a changed parent pid is taken as the SIGTERM that never came. The first request calls
 * `onStop`; a second SIGINT or SIGTERM exits at once, and the anvil hook (signal-exit) kills the chain on
 * that exit.
 */
function watchStop(onStop: (signal: StopSignal) => void): {
  readonly signal: StopSignal | undefined;
  dispose(): void;
} {
  let stopped: StopSignal | undefined;
  const request = (signal: StopSignal) => {
    if (stopped) {
      process.stderr.write(`\n${signal} again: exiting now\n`);
      process.exit(SIGNAL_EXIT_CODE[signal]);
    }
    stopped = signal;
    onStop(signal);
  };
  // process.on, not once: a once listener is removed before it runs, which leaves signal-exit as the only
  // listener, and signal-exit then kills the process as if nobody handled the signal.
  const onInt = () => request("SIGINT");
  const onTerm = () => request("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent && !stopped) {
      process.stderr.write(`\nthe parent process (${parent}) is gone\n`);
      request("SIGTERM");
    }
  }, PARENT_POLL_MS);
  watch.unref();
  return {
    get signal() {
      return stopped;
    },
    dispose() {
      clearInterval(watch);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    },
  };
}

async function up(argv: string[]): Promise<number> {
  if (asksForHelp(argv)) {
    process.stdout.write(UP_USAGE);
    return 0;
  }
  const { values } = parse("up", argv, {
    port: { type: "string" },
    "facilitator-port": { type: "string" },
    "server-port": { type: "string" },
    relayers: { type: "string" },
    network: { type: "string" },
    profile: { type: "string" },
    "block-time": { type: "string" },
    hardfork: { type: "string" },
    history: { type: "string" },
    accounts: { type: "string" },
    "fork-url": { type: "string" },
    "fork-block": { type: "string" },
  });
  const port = portOption("--port", values.port, 8545);
  const facilitatorPort = portOption("--facilitator-port", values["facilitator-port"], 4022);
  const serverPort = portOption("--server-port", values["server-port"], 4021);
  const network = networkOption(values.network);
  const profile = profileOption(values.profile) ?? "instant";
  const hardfork = hardforkOption(values.hardfork);
  const history = historyOption(values.history);
  const forkBlock = optionalPositive("--fork-block", values["fork-block"], true);
  if (forkBlock !== undefined && !values["fork-url"]) throw new UsageError("--fork-block needs --fork-url");
  const blockTime = optionalPositive("--block-time", values["block-time"], false);
  const accounts = optionalPositive("--accounts", values.accounts, true) ?? 10;
  const relayerCount = optionalPositive("--relayers", values.relayers, true);
  await assertPortsFree([
    ["--port", port],
    ["--facilitator-port", facilitatorPort],
    ["--server-port", serverPort],
  ]);

  let wake = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    wake = resolve;
  });
  // Watched from the start: a stop asked for while the stack starts is honoured once it has started.
  const stop = watchStop(() => wake());
  try {
    const stack = await startStack({
      devnet: {
        // startDevnet picks a free port itself when given none; anvil told port 0 would not say which.
        port: port === 0 ? undefined : port,
        network,
        profile,
        blockTime,
        hardfork,
        history,
        accounts,
        forkUrl: values["fork-url"],
        forkBlockNumber: forkBlock === undefined ? undefined : BigInt(forkBlock),
      },
      facilitator: { port: facilitatorPort, relayers: relayerCount },
      server: {
        port: serverPort,
        routes: paymentPathRoutes,
        handlers: paymentPathHandlers,
      },
    });
    if (!stop.signal) {
      const { devnet, facilitatorUrl, relayerSets, server } = stack;
      const ready = {
        event: "ready",
        rpcUrl: devnet.rpcUrl,
        chainId: devnet.chainId,
        network: devnet.network,
        // What an x402 server's config names the network: the CAIP-2 id.
        caip2: `eip155:${devnet.chainId}`,
        // A client that sends set-code (EIP-7702) transactions needs to know whether the chain takes them.
        hardfork: devnet.hardfork,
        history: devnet.history,
        stateRoots: devnet.stateRoots,
        usdc: devnet.contracts.usdc,
        // The EIP-712 domain payments are signed for, which a server's asset config must name.
        usdcDomain: { name: devnet.usdc.name, version: devnet.usdc.version },
        multicall3: devnet.contracts.multicall3,
        accounts: devnet.accounts.map(({ address, privateKey }) => ({ address, privateKey })),
        facilitatorUrl,
        serverUrl: server.url,
        routes: server.routes,
      };
      process.stdout.write(`${JSON.stringify(ready)}\n`);
      process.stderr.write(
        [
          `x402 devnet up as ${devnet.network ? NETWORKS[devnet.network].label : `chain ${devnet.chainId}`} (${devnet.mode === "fork" ? `fork of ${values["fork-url"]}` : "mock USDC"})`,
          `  rpc        ${devnet.rpcUrl}   chain ${devnet.chainId}   ${devnet.blockTime === undefined ? "automine" : `${devnet.blockTime} s blocks`}   ${devnet.hardfork ?? "unknown"} rules   ${devnet.history} history`,
          `  usdc       ${devnet.contracts.usdc}   "${devnet.usdc.name}" version ${devnet.usdc.version}`,
          `  multicall3 ${devnet.contracts.multicall3}`,
          `  wallets    ${devnet.accounts.length} funded, first ${devnet.accounts[0]?.address ?? "-"}`,
          `  facilitator ${facilitatorUrl}   (relayers: ${relayerSets.exact.length} EIP-3009, ${relayerSets.permit2.length} Permit2, ${relayerSets.channels.length} channels)`,
          `  server     ${server.url}   ${server.routes.map((r) => `${r.method} ${r.path} for ${r.price} USDC base units`).join(", ")}`,
          "Ctrl-C to stop.",
          "",
        ].join("\n"),
      );
      await stopRequested;
    }
    process.stderr.write("stopping\n");
    await stack.stop();
    return 0;
  } finally {
    stop.dispose();
  }
}

/** JSON has no bigint: amounts (USDC base units) are written as decimal strings. */
const bigintJson = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value);

/** `30s`, `2m`, `500ms`, or a plain number of seconds, in ms. */
function durationOption(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!match) throw new UsageError(`--duration must look like 30s, 2m or 500ms, got ${raw}`);
  const value = Number(match[1]);
  const unit = match[2] ?? "s";
  const ms = unit === "ms" ? value : unit === "m" ? value * 60_000 : value * 1000;
  if (ms <= 0) throw new UsageError(`--duration must be positive, got ${raw}`);
  return ms;
}

/**
 * Fails now, not after a long run, when a report could not be written where asked: the file is opened
 * for appending (which neither truncates one that exists nor needs more than write access) and one this
 * check created is removed again.
 */
async function assertWritable(flag: string, path: string): Promise<void> {
  const existed = await stat(path).then(
    () => true,
    () => false,
  );
  try {
    await (await open(path, "a")).close();
    if (!existed) await unlink(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const directory = dirname(resolve(path));
    const why =
      code === "ENOENT"
        ? `there is no directory ${directory}`
        : code === "ENOTDIR"
          ? `${directory} is not a directory`
          : code === "EISDIR"
            ? "it is a directory"
            : code === "EACCES" || code === "EPERM"
              ? "permission denied"
              : code === "EROFS"
                ? "the file system is read-only"
                : error instanceof Error
                  ? error.message
                  : String(error);
    throw new UsageError(`${flag} ${path} cannot be written: ${why}`, false);
  }
}

/** The options of every command that runs a scenario (`scenario`, `artillery`). */
const RUN_OPTIONS = {
  agents: { type: "string" },
  duration: { type: "string" },
  rate: { type: "string" },
  threshold: { type: "string", multiple: true },
  seed: { type: "string" },
  network: { type: "string" },
  profile: { type: "string" },
  hardfork: { type: "string" },
  history: { type: "string" },
  "fork-url": { type: "string" },
  "rpc-url": { type: "string" },
  "server-url": { type: "string" },
  "facilitator-url": { type: "string" },
  json: { type: "string" },
  html: { type: "string" },
} as const;

type RunValues = {
  [K in keyof typeof RUN_OPTIONS]?: (typeof RUN_OPTIONS)[K] extends { multiple: true } ? string[] : string;
};

/** The load and devnet settings of a run, checked. */
function runSettings(values: RunValues, positionals: readonly string[]) {
  if (positionals.length > 1) throw new UsageError(`one scenario at a time, got ${positionals.join(", ")}`);
  const agents = optionalPositive("--agents", values.agents, true);
  const durationMs = durationOption(values.duration);
  const rate = optionalPositive("--rate", values.rate, false);
  const seed = optionalPositive("--seed", values.seed, true);
  const devnet = {
    network: networkOption(values.network),
    profile: profileOption(values.profile),
    hardfork: hardforkOption(values.hardfork),
    history: historyOption(values.history),
  };
  const devnetFlag = (["network", "profile", "hardfork", "history"] as const)
    .filter((flag) => devnet[flag] !== undefined)
    .map((flag) => `--${flag}`)[0];
  const runningChain = (["rpc-url", "server-url", "facilitator-url"] as const).find(
    (f) => values[f] !== undefined,
  );
  if (devnetFlag && runningChain) {
    throw new UsageError(
      `${devnetFlag} chooses the devnet a run starts; with --${runningChain} the run uses one already running: pass ${devnetFlag} to \`x402-devnet up\` instead`,
      false,
    );
  }
  return { agents, durationMs, rate, seed, devnet };
}

type RunSettings = ReturnType<typeof runSettings>;

/** What the scenario cannot honour, refused, and what it ignores, said; the report files checked writable. */
async function checkRun(
  definition: ScenarioDefinition,
  values: RunValues,
  settings: RunSettings & { findCapacity?: boolean },
): Promise<void> {
  for (const notice of checkOverrides(definition, {
    profile: settings.devnet.profile,
    forkUrl: values["fork-url"],
    agents: settings.agents,
    durationMs: settings.durationMs,
    rate: settings.rate,
    seed: settings.seed,
    findCapacity: settings.findCapacity,
  })) {
    process.stderr.write(`x402-devnet: ${notice}\n`);
  }
  if (values.json) await assertWritable("--json", values.json);
  if (values.html) await assertWritable("--html", values.html);
}

/** The overrides every run takes from the command line. */
function runOverrides(
  values: RunValues,
  settings: Pick<RunSettings, "agents" | "seed" | "devnet">,
  signal: AbortSignal,
) {
  return {
    agents: settings.agents,
    thresholds: values.threshold,
    seed: settings.seed,
    devnet: settings.devnet,
    forkUrl: values["fork-url"],
    rpcUrl: values["rpc-url"],
    serverUrl: values["server-url"],
    facilitatorUrl: values["facilitator-url"],
    signal,
  };
}

/** Prints the summary, writes the report files, and says the exit code: 0 pass, 1 fail, 2 a failed step. */
async function writeRun(report: RunReport, values: Pick<RunValues, "json" | "html">): Promise<number> {
  process.stdout.write(formatSummary(report));
  if (values.json) await writeFile(values.json, `${JSON.stringify(report, bigintJson, 2)}\n`);
  if (values.html) await writeFile(values.html, renderHtmlReport(report));
  if (report.error) {
    process.stderr.write(
      `x402-devnet: the run's step "${report.error.step}" failed: ${firstLine(report.error.message)}${values.json || values.html ? " (the report, with what was measured, was written)" : ""}\n`,
    );
    return 2;
  }
  return report.ok && !report.comparison?.regressed ? 0 : 1;
}

async function scenario(argv: string[]): Promise<number> {
  if (asksForHelp(argv)) {
    process.stdout.write(SCENARIO_USAGE);
    return 0;
  }
  const { values, positionals } = parse("scenario", argv, {
    ...RUN_OPTIONS,
    list: { type: "boolean" },
    "find-capacity": { type: "boolean" },
    "eth-price": { type: "string" },
    "base-fee": { type: "string" },
    baseline: { type: "string" },
  });
  if (values.list) {
    for (const name of await scenarioNames()) {
      const definition = await loadScenario(name);
      process.stdout.write(`${name.padEnd(16)}${definition.description}\n`);
    }
    return 0;
  }
  const { agents, durationMs, rate, seed, devnet } = runSettings(values, positionals);
  const findingCapacity = values["find-capacity"] === true;
  const cost = {
    ethUsd: optionalPositive("--eth-price", values["eth-price"], false),
    l2BaseFeeGwei: optionalPositive("--base-fee", values["base-fee"], false),
  };
  const definition = await loadScenario(positionals[0] ?? "per-request");
  await checkRun(definition, values, {
    agents,
    durationMs,
    rate,
    seed,
    devnet,
    findCapacity: findingCapacity,
  });
  let baseline: RunReport | undefined;
  if (values.baseline !== undefined) {
    if (findingCapacity) throw new UsageError("--baseline compares one run; --find-capacity runs many");
    // Read before the run: a wrong file costs nothing, not a whole run.
    baseline = await loadBaseline(values.baseline, definition.name).catch((error: unknown) => {
      throw error instanceof BaselineError ? new UsageError(error.message, false) : error;
    });
  }

  return untilStopped("finishing requests in flight, then reporting", async (signal) => {
    const common = runOverrides(values, { agents, seed, devnet }, signal);
    if (findingCapacity) {
      const capacity = await findCapacity(definition, {
        ...common,
        startRate: rate,
        stepDurationMs: durationMs,
        cost,
      });
      process.stdout.write(formatCapacity(capacity));
      if (values.json) await writeFile(values.json, `${JSON.stringify(capacity, bigintJson, 2)}\n`);
      if (values.html) await writeFile(values.html, renderCapacityHtml(capacity));
      return capacity.highestRate === null ? 1 : 0;
    }
    const run = await runScenario(definition, { ...common, durationMs, rate, cost });
    const report: RunReport = baseline
      ? { ...run, comparison: compareReports(baseline, run, { file: values.baseline }) }
      : run;
    return writeRun(report, values);
  });
}

/**
 * Runs a command that a stop request (Ctrl-C, SIGTERM, the parent gone) should end early but in order:
 * `run` gets the signal, and the exit code says the signal whatever the run returned or threw, since an
 * interrupted run never passes.
 */
async function untilStopped(
  stopping: string,
  run: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const abort = new AbortController();
  const stop = watchStop(() => {
    process.stderr.write(`\nstopping: ${stopping}\n`);
    abort.abort();
  });
  const verdict = (code: number) => (stop.signal ? SIGNAL_EXIT_CODE[stop.signal] : code);
  try {
    return verdict(await run(abort.signal));
  } catch (error) {
    if (!stop.signal) throw error;
    // Whatever went wrong, the user asked to stop: the exit code says so, the message says what else.
    process.stderr.write(`x402-devnet: ${oneLine(error)}\n`);
    return verdict(2);
  } finally {
    stop.dispose();
  }
}

async function artillery(argv: string[]): Promise<number> {
  if (asksForHelp(argv)) {
    process.stdout.write(ARTILLERY_USAGE);
    return 0;
  }
  if (argv[0] === "report") return artilleryReport(argv.slice(1));
  const { values, positionals } = parse("artillery", argv, {
    ...RUN_OPTIONS,
    workers: { type: "string" },
    out: { type: "string" },
    write: { type: "string" },
    install: { type: "boolean" },
  });
  if (values.install) {
    await ensureArtillery((line) => process.stderr.write(`x402-devnet: ${line}\n`));
    process.stdout.write(`artillery ${ARTILLERY_VERSION} is installed in ${artilleryHome()}\n`);
    return 0;
  }
  const settings = runSettings(values, positionals);
  const workers = optionalPositive("--workers", values.workers, true);
  if (values.write !== undefined && values.out !== undefined)
    throw new UsageError(
      "--write writes the files and stops; --out keeps those of a local run: one or the other",
    );
  const definition = await loadScenario(positionals[0] ?? "per-request");
  await checkRun(definition, values, settings);
  const thresholds = [...(definition.thresholds ?? []), ...(values.threshold ?? [])].map(parseThreshold);
  if (values.write !== undefined) {
    if (!values["server-url"] || !values["rpc-url"])
      throw new UsageError(
        "--write needs --server-url and --rpc-url: the server and chain the cloud workers will reach",
      );
    const agentCount = settings.agents ?? definition.agents.count;
    const written = await writeCloudRun({
      scenario: definition,
      plan: {
        agentCount,
        seed: settings.seed ?? definition.seed ?? 1,
        model: effectiveModel(definition.load, settings),
        thresholds,
        ignored: [],
      },
      serverUrl: values["server-url"],
      rpcUrl: values["rpc-url"],
      dir: values.write,
    });
    process.stdout.write(
      [
        `wrote ${written.files.join(" and ")}`,
        ...(written.unmapped.length
          ? [
              `Artillery's ensure cannot check ${written.unmapped.join(", ")}: \`artillery report\` judges them`,
            ]
          : []),
        "run it on AWS Fargate (each of --count tasks runs the whole load), then judge it on chain:",
        ...written.commands.map((c) => `  ${c}`),
        "",
      ].join("\n"),
    );
    return 0;
  }
  return untilStopped("the workers stop sending, then Artillery reports", async (signal) => {
    const report = await runScenario(definition, {
      ...runOverrides(values, settings, signal),
      durationMs: settings.durationMs,
      rate: settings.rate,
      engine: artilleryEngine({
        workers,
        dir: values.out,
        log: (line) => process.stderr.write(`artillery | ${line}\n`),
      }),
    });
    return writeRun(report, values);
  });
}

/** `artillery report`: a cloud run's Artillery report, judged on chain like a local one. */
async function artilleryReport(argv: string[]): Promise<number> {
  const { values, positionals } = parse("artillery", argv, {
    script: { type: "string" },
    "rpc-url": { type: "string" },
    json: { type: "string" },
    html: { type: "string" },
  });
  if (positionals.length !== 1)
    throw new UsageError("artillery report takes one file: Artillery's JSON report");
  if (!values.script) throw new UsageError("artillery report needs --script, the script the run used");
  if (!values["rpc-url"]) throw new UsageError("artillery report needs --rpc-url, the chain the run paid on");
  if (values.json) await assertWritable("--json", values.json);
  if (values.html) await assertWritable("--html", values.html);
  const job = await readArtilleryJob(values.script).catch((error: unknown) => {
    throw new UsageError(`--script ${values.script}: ${oneLine(error)}`, false);
  });
  const file = positionals[0] as string;
  const artilleryRun = await readArtilleryReport(file).catch((error: unknown) => {
    throw new UsageError(oneLine(error), false);
  });
  if (!artilleryRun) throw new UsageError(`${file} cannot be read`, false);
  const chainId = await probeRpcUrl(values["rpc-url"], ATTACH_ROLE);
  if (chainId !== job.chain.chainId)
    throw new UsageError(`--rpc-url is chain ${chainId}; the run paid on chain ${job.chain.chainId}`, false);
  const known = await loadScenario(job.spec.scenario).catch(() => undefined);
  const report = await judgeArtilleryRun({
    scenario: { name: job.spec.scenario, description: known?.description ?? "an Artillery run" },
    job,
    artillery: artilleryRun,
    client: createDevnetClient(values["rpc-url"], chainId),
    config: { files: dirname(resolve(values.script)) },
    startedAt: new Date(artilleryRun.aggregate.firstMetricAt ?? Date.now()),
    samples: [],
    interrupted: false,
    mnemonic: agentMnemonic(),
    rpcUrl: values["rpc-url"],
  });
  return writeRun(report, values);
}

const oneLine = (error: unknown) => (error instanceof Error ? error.message : String(error));
/** viem's messages run to several lines (URL, request body, version); the first says what failed. */
const firstLine = (message: string) => message.split("\n")[0] ?? message;

/** Runs the CLI; resolves to the process exit code (0 ok, 1 a failed threshold or invariant, 2 bad input or a harness error, 130/143 stopped by SIGINT/SIGTERM). */
export async function main(argv: string[]): Promise<number> {
  // A reader that went away (a closed pipe, a killed npm) must not stop the report files being written
  // and the stack being torn down.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
    });
  }
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "up":
        return await up(rest);
      case "scenario":
        return await scenario(rest);
      case "artillery":
        return await artillery(rest);
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return 0;
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    const name = error instanceof Error ? error.name : "";
    const code = (error as { code?: unknown } | null)?.code;
    if (HARNESS_ERRORS.has(name)) {
      const help =
        HELPFUL_ERRORS.has(name) && !(error instanceof UsageError && !error.pointToHelp)
          ? ` (see x402-devnet ${command === "up" || command === "scenario" || command === "artillery" ? `${command} ` : ""}--help)`
          : "";
      process.stderr.write(`x402-devnet: ${oneLine(error)}${help}\n`);
    } else if (error instanceof DevnetError) {
      process.stderr.write(`x402-devnet: ${error.message}\n`);
    } else if (code === "EADDRINUSE") {
      // A port taken between the check up front and the listen.
      const { address, port } = error as { address?: string; port?: number };
      process.stderr.write(`x402-devnet: Port ${port} on ${address ?? HOST} is already in use.\n`);
    } else {
      process.stderr.write(
        `x402-devnet: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    return 2;
  }
}
