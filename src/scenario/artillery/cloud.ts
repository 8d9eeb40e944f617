import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { createPublicClient, http } from "viem";
import { ATTACH_ROLE, NETWORKS, networkOfChainId, probeRpcUrl } from "../../chain/index.ts";
import type { ScenarioDefinition } from "../define.ts";
import type { RunPlan } from "../engine.ts";
import { loadSpecOf } from "../load-spec.ts";
import { TargetError } from "../target.ts";
import { FILES, writeArtilleryFiles } from "./engine.ts";
import { ARTILLERY_HD, ARTILLERY_VERSION, FUNDER_KEY_ENV } from "./job.ts";

/** Wei per agent wallet on a Permit2 path for its `approve`: 0.001 ETH, plenty at a testnet's gas price. */
const CLOUD_APPROVAL_ETH = 10n ** 15n;

const RPC_ROLE = {
  ...ATTACH_ROLE,
  action: "read the chain at",
  hint: "Check --rpc-url: it must be the JSON-RPC of the chain your server settles on, reachable from here and from the cloud workers.",
};

/**
 * Writes a scenario's Artillery files for a run in the cloud against the user's server and chain, and
 * returns the commands that run it and judge it. Nothing is started here and nothing is funded: each
 * worker funds its own wallets from the key in {@link FUNDER_KEY_ENV}, on whatever chain that is (a
 * devnet reachable from the cloud, a fork, or Base Sepolia). Each cloud worker runs the whole script
 * over all its threads, so each thread takes wallets for every agent.
 */
export async function writeCloudRun(input: {
  scenario: ScenarioDefinition;
  plan: RunPlan;
  serverUrl: string;
  rpcUrl: string;
  dir: string;
}): Promise<{ files: string[]; unmapped: string[]; commands: string[] }> {
  const { scenario, plan } = input;
  const spec = loadSpecOf(
    scenario,
    { model: plan.model, agents: plan.agentCount, seed: plan.seed },
    "Artillery",
  );
  if (plan.agentCount > ARTILLERY_HD.slotSize)
    throw new TargetError(
      `a cloud worker thread holds at most ${ARTILLERY_HD.slotSize} agents, asked for ${plan.agentCount}`,
    );
  let server: URL;
  try {
    server = new URL(input.serverUrl);
  } catch {
    throw new TargetError(`--server-url ${JSON.stringify(input.serverUrl)} is not a URL`);
  }
  const chainId = await probeRpcUrl(input.rpcUrl, RPC_ROLE);
  const network = networkOfChainId(chainId);
  if (!network)
    throw new TargetError(
      `--rpc-url ${input.rpcUrl} is chain ${chainId}; the workers pay in USDC on ${Object.values(NETWORKS)
        .map((n) => `${n.label} (${n.chainId})`)
        .join(" or ")}`,
    );
  const usdc = NETWORKS[network].usdc;
  const fromBlock = await createPublicClient({ transport: http(input.rpcUrl) }).getBlockNumber();
  const { unmapped } = await writeArtilleryFiles(
    input.dir,
    {
      version: 1,
      runId: randomUUID(),
      spec,
      server: { url: server.href, fixed: server.pathname !== "/" || server.search !== "" },
      chain: {
        rpcUrl: input.rpcUrl,
        chainId,
        usdc: { address: usdc.address, name: usdc.name, version: usdc.version },
      },
      walletsPerWorker: plan.agentCount,
      eth: (spec.permit2Allowance ? CLOUD_APPROVAL_ETH : 0n).toString(),
      fromBlock: fromBlock.toString(),
      payees: [],
    },
    plan.thresholds,
  );
  const script = join(input.dir, FILES.script);
  const report = join(input.dir, FILES.report);
  const artillery = `ARTILLERY_DISABLE_TELEMETRY=1 npx artillery@${ARTILLERY_VERSION}`;
  return {
    files: [script, join(input.dir, FILES.processor)],
    unmapped,
    commands: [
      `aws ssm put-parameter --region us-east-1 --name /artilleryio/${FUNDER_KEY_ENV} --type SecureString --value 0x…   # once: the key the workers fund their wallets from`,
      `${artillery} run-fargate ${script} --region us-east-1 --count 2 --secret ${FUNDER_KEY_ENV} --output ${report}`,
      `x402-devnet artillery report ${report} --script ${script} --rpc-url ${input.rpcUrl}`,
    ],
  };
}
