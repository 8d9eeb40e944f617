import { ForkUnreachableError } from "./errors.ts";

const FORK_PREFLIGHT_TIMEOUT_MS = 10_000;

/**
 * Asks the upstream for its chain id before anvil is started on it: anvil retries an unreachable fork
 * for a long time and then fails with a message about its own state, not about the URL.
 */
export async function probeForkUrl(forkUrl: string): Promise<number> {
  const hint = "Check --fork-url: it must be a JSON-RPC endpoint (e.g. a Base node) reachable from here.";
  let url: URL;
  try {
    url = new URL(forkUrl);
  } catch {
    throw new ForkUnreachableError(`--fork-url ${JSON.stringify(forkUrl)} is not a URL.`, hint);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ForkUnreachableError(`--fork-url must be http(s), got ${url.protocol}`, hint);
  }
  let body: unknown;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
      signal: AbortSignal.timeout(FORK_PREFLIGHT_TIMEOUT_MS),
    });
    body = await response.json();
  } catch (error) {
    const reason =
      error instanceof Error && error.name === "TimeoutError"
        ? `no answer within ${FORK_PREFLIGHT_TIMEOUT_MS / 1000} s`
        : error instanceof SyntaxError
          ? "the answer is not JSON"
          : String((error as Error).cause ?? (error as Error).message);
    throw new ForkUnreachableError(`Cannot fork ${forkUrl}: ${reason}.`, hint, { cause: error });
  }
  const result = (body as { result?: unknown } | null)?.result;
  if (typeof result !== "string" || !/^0x[0-9a-f]+$/i.test(result)) {
    throw new ForkUnreachableError(`Cannot fork ${forkUrl}: eth_chainId gave no chain id.`, hint);
  }
  return Number.parseInt(result, 16);
}
