import { type DevnetError, ForkUnreachableError, RpcUnreachableError } from "./errors.ts";

const PREFLIGHT_TIMEOUT_MS = 10_000;

type ProbeRole = {
  flag: string;
  /** What the harness was about to do with the URL, for the message. */
  action: string;
  hint: string;
  error: new (message: string, hint?: string, options?: ErrorOptions) => DevnetError;
};

export const FORK_ROLE: ProbeRole = {
  flag: "--fork-url",
  action: "fork",
  hint: "Check --fork-url: it must be a JSON-RPC endpoint (e.g. a Base node) reachable from here.",
  error: ForkUnreachableError,
};

export const ATTACH_ROLE: ProbeRole = {
  flag: "--rpc-url",
  action: "attach to",
  hint: "Check --rpc-url: it must be a running anvil devnet, e.g. the rpcUrl `x402-devnet up` prints.",
  error: RpcUnreachableError,
};

/**
 * Asks an endpoint for its chain id before anvil forks it or the harness attaches to it:
 * anvil retries an unreachable fork for a long time and then fails with a message about its own state,
 * and a wrong URL should name itself, not surface as a viem error half way through setup.
 */
export async function probeRpcUrl(rawUrl: string, role: ProbeRole): Promise<number> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new role.error(`${role.flag} ${JSON.stringify(rawUrl)} is not a URL.`, role.hint);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new role.error(`${role.flag} must be http(s), got ${url.protocol}`, role.hint);
  }
  let body: unknown;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
      signal: AbortSignal.timeout(PREFLIGHT_TIMEOUT_MS),
    });
    body = await response.json();
  } catch (error) {
    const reason =
      error instanceof Error && error.name === "TimeoutError"
        ? `no answer within ${PREFLIGHT_TIMEOUT_MS / 1000} s`
        : error instanceof SyntaxError
          ? "the answer is not JSON"
          : causeOf(error);
    throw new role.error(`Cannot ${role.action} ${rawUrl}: ${reason}.`, role.hint, { cause: error });
  }
  const result = (body as { result?: unknown } | null)?.result;
  if (typeof result !== "string" || !/^0x[0-9a-f]+$/i.test(result)) {
    throw new role.error(`Cannot ${role.action} ${rawUrl}: eth_chainId gave no chain id.`, role.hint);
  }
  return Number.parseInt(result, 16);
}

/** fetch's own message is "fetch failed"; what happened is in its cause. */
function causeOf(error: unknown): string {
  const cause = (error as Error).cause;
  if (cause instanceof Error) return cause.message;
  return String(cause ?? (error as Error).message);
}
