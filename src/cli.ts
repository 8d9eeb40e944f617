import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { DevnetError, PROFILES, type ProfileName } from "./chain/index.ts";
import {
  DEFAULT_ATTACH_RPC_URL,
  findCapacity,
  formatSummary,
  loadScenario,
  runScenario,
  scenarioNames,
  TargetError,
  ThresholdSyntaxError,
  UnknownScenarioError,
} from "./scenario/index.ts";
import { renderHtmlReport } from "./scenario/report-html.ts";
import { startStack } from "./stack.ts";

/** A mistake in how the CLI was called: reported with usage, exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

const USAGE = `Usage: x402-devnet <command> [options]

Commands:
  up    Start a Base devnet (chain 8453) with USDC and Multicall3 at their Base addresses, the
        reference facilitator and the reference resource server (GET /weather for $0.001).

  scenario [NAME]
        Run a scenario (default per-request) on a fresh local stack, or against your own server or
        facilitator, print a summary, and exit 0 when every threshold and money invariant holds, 1 when
        one fails, 2 on a harness error.

Options for scenario:
  --list                list the scenarios with their descriptions
  --agents N            number of agents (overrides the scenario)
  --duration D          run time: 30s, 2m, 500ms (overrides the scenario)
  --rate R              constant arrival rate per second (an open model)
  --threshold EXPR      an extra threshold, e.g. "e2e.p99 < 50ms" (repeatable)
  --seed N              seed of the arrival schedule and think times
  --fork-url URL        run on a fork of this chain (real Base) instead of the mock USDC
  --server-url URL      pay your resource server instead of ours: a paid route's URL (loaded as is)
                        or an origin (the scenario's paths); it must settle on the --rpc-url chain
  --facilitator-url URL have our server verify and settle through your facilitator, which settles on
                        the --rpc-url chain
  --rpc-url URL         the running devnet to fund the agents on and check the money on (default
                        ${DEFAULT_ATTACH_RPC_URL}, what \`x402-devnet up\` starts, with --server-url
                        or --facilitator-url); alone, our facilitator and server run on that chain
  --find-capacity       ramp the arrival rate (x1.5 per 5 s step, or --duration per step) until a
                        threshold fails; report the highest rate that held and the latency curve
  --json FILE           write the report as JSON
  --html FILE           write the report as a self-contained HTML page

Options for up:
  --port P              RPC port (default 8545)
  --facilitator-port P  facilitator port (default 4022)
  --server-port P       resource server port (default 4021)
  --relayers N          settlement relayer keys (default 4)
  --profile NAME        instant (automine, default) | base (2 s blocks)
  --block-time S        seconds between blocks, fractions allowed (overrides --profile)
  --accounts N          funded wallets to derive (default 10)
  --fork-url URL        fork this chain (real Base) instead of placing the mock USDC
  --fork-block N        block to fork at (with --fork-url)
`;

function positiveNumber(flag: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(
      `${flag} must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

function portOption(flag: string, raw: string | undefined, fallback: number): number {
  const port = positiveNumber(flag, raw, true) ?? fallback;
  if (port > 65_535) throw new UsageError(`${flag} must be at most 65535, got ${port}`);
  return port;
}

async function up(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: "string" },
      "facilitator-port": { type: "string" },
      "server-port": { type: "string" },
      relayers: { type: "string" },
      profile: { type: "string" },
      "block-time": { type: "string" },
      accounts: { type: "string" },
      "fork-url": { type: "string" },
      "fork-block": { type: "string" },
    },
  });
  const port = portOption("--port", values.port, 8545);
  const facilitatorPort = portOption("--facilitator-port", values["facilitator-port"], 4022);
  const serverPort = portOption("--server-port", values["server-port"], 4021);
  const profile = values.profile ?? "instant";
  if (!(profile in PROFILES)) {
    throw new UsageError(
      `--profile must be one of ${Object.keys(PROFILES).join(", ")}, got ${JSON.stringify(profile)}`,
    );
  }
  const forkBlock = positiveNumber("--fork-block", values["fork-block"], true);
  if (forkBlock !== undefined && !values["fork-url"]) throw new UsageError("--fork-block needs --fork-url");

  const stack = await startStack({
    devnet: {
      port,
      profile: profile as ProfileName,
      blockTime: positiveNumber("--block-time", values["block-time"], false),
      accounts: positiveNumber("--accounts", values.accounts, true) ?? 10,
      forkUrl: values["fork-url"],
      forkBlockNumber: forkBlock === undefined ? undefined : BigInt(forkBlock),
    },
    facilitator: { port: facilitatorPort, relayers: positiveNumber("--relayers", values.relayers, true) },
    server: { port: serverPort },
  });
  const { devnet, facilitatorUrl, relayers, server } = stack;

  const ready = {
    event: "ready",
    rpcUrl: devnet.rpcUrl,
    chainId: devnet.chainId,
    usdc: devnet.contracts.usdc,
    multicall3: devnet.contracts.multicall3,
    accounts: devnet.accounts.map(({ address, privateKey }) => ({ address, privateKey })),
    facilitatorUrl,
    serverUrl: server.url,
    routes: server.routes,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  process.stderr.write(
    [
      `x402 devnet up (${devnet.mode === "fork" ? `fork of ${values["fork-url"]}` : "mock USDC"})`,
      `  rpc        ${devnet.rpcUrl}   chain ${devnet.chainId}   ${devnet.blockTime === undefined ? "automine" : `${devnet.blockTime} s blocks`}`,
      `  usdc       ${devnet.contracts.usdc}`,
      `  multicall3 ${devnet.contracts.multicall3}`,
      `  wallets    ${devnet.accounts.length} funded, first ${devnet.accounts[0]?.address ?? "-"}`,
      `  facilitator ${facilitatorUrl}   (${relayers.length} relayers)`,
      `  server     ${server.url}   ${server.routes.map((r) => `${r.method} ${r.path} for ${r.price} USDC base units`).join(", ")}`,
      "Ctrl-C to stop.",
      "",
    ].join("\n"),
  );

  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await stack.stop();
}

/** JSON has no bigint: amounts (USDC base units) are written as decimal strings. */
const bigintJson = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value);

/** `30s`, `2m`, `500ms`, or a plain number of seconds, in ms. */
function durationOption(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!match) throw new UsageError(`--duration must look like 30s, 2m or 500ms, got ${JSON.stringify(raw)}`);
  const value = Number(match[1]);
  const unit = match[2] ?? "s";
  const ms = unit === "ms" ? value : unit === "m" ? value * 60_000 : value * 1000;
  if (ms <= 0) throw new UsageError("--duration must be positive");
  return ms;
}

async function scenario(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      list: { type: "boolean" },
      agents: { type: "string" },
      duration: { type: "string" },
      rate: { type: "string" },
      threshold: { type: "string", multiple: true },
      seed: { type: "string" },
      "fork-url": { type: "string" },
      "rpc-url": { type: "string" },
      "server-url": { type: "string" },
      "facilitator-url": { type: "string" },
      "find-capacity": { type: "boolean" },
      json: { type: "string" },
      html: { type: "string" },
    },
  });
  if (values.list) {
    for (const name of await scenarioNames()) {
      const definition = await loadScenario(name);
      process.stdout.write(`${name.padEnd(16)}${definition.description}\n`);
    }
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`one scenario at a time, got ${positionals.join(", ")}`);
  const definition = await loadScenario(positionals[0] ?? "per-request");
  const abort = new AbortController();
  const onSignal = () => {
    process.stderr.write("\nstopping: finishing requests in flight, then reporting\n");
    abort.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const common = {
    agents: positiveNumber("--agents", values.agents, true),
    thresholds: values.threshold,
    seed: positiveNumber("--seed", values.seed, true),
    forkUrl: values["fork-url"],
    rpcUrl: values["rpc-url"],
    serverUrl: values["server-url"],
    facilitatorUrl: values["facilitator-url"],
    signal: abort.signal,
  };
  try {
    if (values["find-capacity"]) {
      const capacity = await findCapacity(definition, {
        ...common,
        startRate: positiveNumber("--rate", values.rate, false),
        stepDurationMs: durationOption(values.duration),
      });
      process.stdout.write(
        [
          `${definition.name}: highest rate that held ${capacity.highestRate ?? "none"}/s`,
          "      rate  achieved    p50 ms    p99 ms",
          ...capacity.steps.map(
            (s) =>
              `${String(s.rate).padStart(10)}${String(s.achieved).padStart(10)}${String(s.p50 ?? "-").padStart(10)}${String(s.p99 ?? "-").padStart(10)}  ${s.ok ? "held" : `failed: ${s.failed.join("; ")}`}`,
          ),
          "",
        ].join("\n"),
      );
      if (values.json) await writeFile(values.json, `${JSON.stringify(capacity, bigintJson, 2)}\n`);
      if (values.html) await writeFile(values.html, renderHtmlReport(capacity.lastReport));
      return capacity.highestRate === null ? 1 : 0;
    }
    const report = await runScenario(definition, {
      ...common,
      durationMs: durationOption(values.duration),
      rate: positiveNumber("--rate", values.rate, false),
    });
    process.stdout.write(formatSummary(report));
    if (values.json) await writeFile(values.json, `${JSON.stringify(report, bigintJson, 2)}\n`);
    if (values.html) await writeFile(values.html, renderHtmlReport(report));
    return report.ok ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Runs the CLI; resolves to the process exit code (0 ok, 1 a failed threshold or invariant, 2 bad input or a harness error). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "up":
        await up(rest);
        return 0;
      case "scenario":
        return await scenario(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (
      error instanceof ThresholdSyntaxError ||
      error instanceof UnknownScenarioError ||
      error instanceof TargetError ||
      error instanceof DevnetError
    ) {
      process.stderr.write(`x402-devnet: ${error.message}\n`);
    } else if (error instanceof UsageError || (error instanceof TypeError && "code" in error)) {
      process.stderr.write(`x402-devnet: ${error.message}\n\n${USAGE}`);
    } else {
      process.stderr.write(
        `x402-devnet: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    return 2;
  }
}
