import { parseArgs } from "node:util";
import { DevnetError, PROFILES, type ProfileName, startDevnet } from "./chain/index.ts";

/** A mistake in how the CLI was called: reported with usage, exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

const USAGE = `Usage: x402-devnet <command> [options]

Commands:
  up    Start a Base devnet (chain 8453) with USDC and Multicall3 at their Base addresses.

Options for up:
  --port P              RPC port (default 8545)
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

async function up(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: "string" },
      profile: { type: "string" },
      "block-time": { type: "string" },
      accounts: { type: "string" },
      "fork-url": { type: "string" },
      "fork-block": { type: "string" },
    },
  });
  const port = positiveNumber("--port", values.port, true) ?? 8545;
  if (port > 65_535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const profile = values.profile ?? "instant";
  if (!(profile in PROFILES)) {
    throw new UsageError(
      `--profile must be one of ${Object.keys(PROFILES).join(", ")}, got ${JSON.stringify(profile)}`,
    );
  }
  const forkBlock = positiveNumber("--fork-block", values["fork-block"], true);
  if (forkBlock !== undefined && !values["fork-url"]) throw new UsageError("--fork-block needs --fork-url");

  const devnet = await startDevnet({
    port,
    profile: profile as ProfileName,
    blockTime: positiveNumber("--block-time", values["block-time"], false),
    accounts: positiveNumber("--accounts", values.accounts, true) ?? 10,
    forkUrl: values["fork-url"],
    forkBlockNumber: forkBlock === undefined ? undefined : BigInt(forkBlock),
  });

  const ready = {
    event: "ready",
    rpcUrl: devnet.rpcUrl,
    chainId: devnet.chainId,
    usdc: devnet.contracts.usdc,
    multicall3: devnet.contracts.multicall3,
    accounts: devnet.accounts.map(({ address, privateKey }) => ({ address, privateKey })),
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  process.stderr.write(
    [
      `x402 devnet up (${devnet.mode === "fork" ? `fork of ${values["fork-url"]}` : "mock USDC"})`,
      `  rpc        ${devnet.rpcUrl}   chain ${devnet.chainId}   ${devnet.blockTime === undefined ? "automine" : `${devnet.blockTime} s blocks`}`,
      `  usdc       ${devnet.contracts.usdc}`,
      `  multicall3 ${devnet.contracts.multicall3}`,
      `  wallets    ${devnet.accounts.length} funded, first ${devnet.accounts[0]?.address ?? "-"}`,
      "Ctrl-C to stop.",
      "",
    ].join("\n"),
  );

  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await devnet.stop();
}

/** Runs the CLI; resolves to the process exit code (0 ok, 2 bad input or a harness error). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "up":
        await up(rest);
        return 0;
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
    if (error instanceof UsageError || (error instanceof TypeError && "code" in error)) {
      process.stderr.write(`x402-devnet: ${error.message}\n\n${USAGE}`);
    } else if (error instanceof DevnetError) {
      process.stderr.write(`x402-devnet: ${error.message}\n`);
    } else {
      process.stderr.write(
        `x402-devnet: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    return 2;
  }
}
