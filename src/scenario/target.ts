import { request as httpRequest } from "undici";
import type { Address } from "viem";
import { type Challenge, challengeFromResponse } from "../agents/challenge.ts";
import type { KnownAsset, SpendingPolicy } from "../agents/index.ts";
import { connectDevnet, type Devnet, type DevnetOptions } from "../chain/index.ts";
import { pathOf } from "../load/index.ts";
import type { SupportedResponse } from "../protocol/index.ts";
import { type Stack, startStack } from "../stack.ts";
import { DEFAULT_TARGET, type ScenarioDefinition } from "./define.ts";

/** Where a run sends its agents unless told otherwise: `x402-devnet up`'s devnet. */
export const DEFAULT_ATTACH_RPC_URL = "http://127.0.0.1:8545";

/** What the user may point a run at instead of the stack it starts for itself. */
export type TargetOptions = {
  /** Fork this chain (real Base or Base Sepolia) instead of placing the mock USDC. */
  forkUrl?: string;
  /**
   * The started devnet's network, profile, rules and history, over the scenario's (not for a chain someone
   * else runs, which is the network its chain id says).
   */
  devnet?: Pick<DevnetOptions, "network" | "profile" | "hardfork" | "history">;
  /** Run on this running devnet (`x402-devnet up`'s, say) instead of starting one. */
  rpcUrl?: string;
  /** Pay this resource server (the user's), which settles on `rpcUrl`'s chain. */
  serverUrl?: string;
  /** Have our server verify and settle through this facilitator (the user's), which settles on `rpcUrl`'s chain. */
  facilitatorUrl?: string;
};

/** The run's settings cannot work together, or the user's server or facilitator cannot take this run. */
export class TargetError extends Error {
  override name = "TargetError";
}

/** What a run drives and checks: the chain, the server its agents pay, and who gets paid. */
export type RunTarget = {
  devnet: Devnet;
  /** The URL an agent requests for a scenario path. */
  url(path: string): string;
  serverUrl: string;
  /** `serverUrl` names one paid route, requested whatever the scenario's path (`url` ignores it). */
  fixedUrl: boolean;
  facilitatorUrl: string | undefined;
  /** The paid routes, for the report: ours as compiled, or what the user's server asked for. */
  routes: readonly unknown[];
  /** Payees known before the run; anyone else paid is found in the paid responses. */
  payees: readonly Address[];
  /** Our whole stack, when the run started one (cases need it). */
  stack: Stack | undefined;
  stop(): Promise<void>;
};

/**
 * The stack a run needs: ours (fresh, or on a fork), ours on the user's devnet, ours in front of the
 * user's facilitator, or the user's server alone. The settings are checked before anything starts.
 */
export async function startTarget(
  scenario: ScenarioDefinition,
  options: TargetOptions,
  agents: number,
): Promise<RunTarget> {
  const external = options.rpcUrl ?? options.serverUrl ?? options.facilitatorUrl;
  if (options.forkUrl && external) {
    throw new TargetError(
      "--fork-url starts a new chain, which a server or facilitator already running cannot settle on: fork with `x402-devnet up --fork-url URL` and pass its RPC as --rpc-url instead.",
    );
  }
  const devnetChoices = Object.entries(options.devnet ?? {}).filter(([, value]) => value !== undefined);
  if (devnetChoices.length > 0 && external) {
    throw new TargetError(
      `the chain at --rpc-url is already running with its own rules and block time, so --${devnetChoices.map(([key]) => key).join(" and --")} cannot apply: pass them to \`x402-devnet up\` instead.`,
    );
  }
  if (scenario.cases && external) {
    throw new TargetError(
      `scenario ${scenario.name} injects faults into a stack of its own; it cannot run against --rpc-url, --server-url or --facilitator-url.`,
    );
  }
  const funding = { accounts: agents, fund: { usdc: scenario.agents.usdc } };

  if (options.serverUrl) {
    const serverUrl = parseUrl("--server-url", options.serverUrl);
    // A URL with a path names the paid route to load; a bare origin takes the scenario's paths.
    const fixed = serverUrl.pathname !== "/" || serverUrl.search !== "";
    const url = (path: string) => (fixed ? serverUrl.href : new URL(path, serverUrl).href);
    const first = { agent: 0, iteration: 0 };
    const target = scenario.target ?? DEFAULT_TARGET;
    const probed = url(typeof target === "function" ? target(first) : pathOf(target, first));
    const challenge = await probeRoute(probed);
    const devnet = await connectDevnet({ ...funding, rpcUrl: options.rpcUrl ?? DEFAULT_ATTACH_RPC_URL });
    if (options.facilitatorUrl) await assertSupports(options.facilitatorUrl, devnet.chainId);
    const payable = challenge.offers.filter(
      (o) =>
        o.network === `eip155:${devnet.chainId}` &&
        o.requirements.asset.toLowerCase() === devnet.usdc.address.toLowerCase(),
    );
    if (payable.length === 0) {
      throw new TargetError(
        `${probed} asks for ${challenge.offers.map((o) => `${o.requirements.asset} on ${o.network ?? o.v1Network}`).join(", ")}; the agents hold USDC (${devnet.usdc.address}) on eip155:${devnet.chainId}, the chain at ${devnet.rpcUrl}.`,
      );
    }
    return {
      devnet,
      url,
      serverUrl: serverUrl.href,
      fixedUrl: fixed,
      facilitatorUrl: options.facilitatorUrl,
      routes: payable.map((o) => ({
        url: probed,
        amount: o.requirements.amount,
        payTo: o.payTo,
        network: o.network,
        x402Version: o.x402Version,
      })),
      payees: payable.map((o) => o.payTo),
      stack: undefined,
      stop: () => devnet.stop(),
    };
  }

  if (options.facilitatorUrl) parseUrl("--facilitator-url", options.facilitatorUrl);
  const stack = await startStack({
    devnet: {
      ...scenario.devnet,
      ...Object.fromEntries(devnetChoices),
      // A profile named for the run brings its own block time, which the scenario's must not override.
      ...(options.devnet?.profile !== undefined ? { blockTime: undefined } : {}),
      ...funding,
      forkUrl: options.forkUrl,
    },
    rpcUrl: external ? (options.rpcUrl ?? DEFAULT_ATTACH_RPC_URL) : undefined,
    facilitatorUrl: options.facilitatorUrl,
    facilitator: scenario.facilitator,
    server: {
      payees: scenario.server?.payees,
      routes: scenario.server?.routes,
      handlers: scenario.server?.handlers,
      facilitatorTimeoutMs: scenario.server?.facilitatorTimeoutMs,
    },
    faults: scenario.faults,
  });
  try {
    if (options.facilitatorUrl) await assertSupports(options.facilitatorUrl, stack.devnet.chainId);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return {
    devnet: stack.devnet,
    url: (path) => new URL(path, stack.server.url).href,
    serverUrl: stack.server.url,
    fixedUrl: false,
    facilitatorUrl: stack.facilitatorUrl,
    routes: stack.server.routes,
    payees: stack.payees.map((p) => p.address),
    stack,
    stop: () => stack.stop(),
  };
}

/** The devnet's USDC as an agent knows a token: what it signs for, on this chain, under this domain. */
export function knownUsdcOf(devnet: Pick<Devnet, "chainId" | "usdc">): KnownAsset {
  const { address, name, version } = devnet.usdc;
  return { network: `eip155:${devnet.chainId}`, address, name, version };
}

/**
 * An agent's policy on this devnet: unless the scenario names its tokens, the agent pays in the devnet's
 * USDC, whichever network the devnet runs as (the agents' own default is Base's).
 */
export function policyOn(
  devnet: Pick<Devnet, "chainId" | "usdc">,
  policy: SpendingPolicy = {},
): SpendingPolicy {
  return { ...policy, assets: policy.assets ?? [knownUsdcOf(devnet)] };
}

function parseUrl(flag: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetError(`${flag} ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new TargetError(`${flag} must be http(s), got ${url.protocol}`);
  return url;
}

const PROBE_TIMEOUT_MS = 10_000;

async function fetchOrExplain(url: string, what: string) {
  try {
    return await httpRequest(url, { headersTimeout: PROBE_TIMEOUT_MS, bodyTimeout: PROBE_TIMEOUT_MS });
  } catch (error) {
    throw new TargetError(`${what} ${url} does not answer: ${(error as Error).message}`, { cause: error });
  }
}

/** An unpaid request to the user's route must be a 402 the agents can read, or the run would measure nothing. */
async function probeRoute(url: string): Promise<Challenge> {
  const response = await fetchOrExplain(url, "the server at");
  const body = new Uint8Array(await response.body.arrayBuffer());
  if (response.statusCode !== 402) {
    throw new TargetError(
      `GET ${url} answered ${response.statusCode}, not 402 Payment Required: point --server-url at a paid route (e.g. http://127.0.0.1:4021/weather).`,
    );
  }
  try {
    return challengeFromResponse(response.headers, body).challenge;
  } catch (error) {
    throw new TargetError(`GET ${url}: ${(error as Error).message}`, { cause: error });
  }
}

/** The user's facilitator must settle `exact` on the chain the agents are funded on. */
async function assertSupports(facilitatorUrl: string, chainId: number): Promise<void> {
  const url = new URL("supported", facilitatorUrl.endsWith("/") ? facilitatorUrl : `${facilitatorUrl}/`).href;
  const response = await fetchOrExplain(url, "the facilitator at");
  const supported = (await response.body.json().catch(() => undefined)) as SupportedResponse | undefined;
  const network = `eip155:${chainId}`;
  if (!supported?.kinds?.some((k) => k.scheme === "exact" && k.network === network)) {
    throw new TargetError(
      `${url} does not list the exact scheme on ${network}: the facilitator must settle on the chain at --rpc-url.`,
    );
  }
}
