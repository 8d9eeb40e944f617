export type JsonRpcId = string | number | null;

/** The calls a JSON-RPC body carries: one, or a batch. */
export type JsonRpcBody = { batch: boolean; calls: readonly { id: JsonRpcId; method: string }[] };

const idOf = (value: unknown): JsonRpcId =>
  typeof value === "string" || typeof value === "number" ? value : null;

function callOf(item: unknown): { id: JsonRpcId; method: string } | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const { id, method } = item as { id?: unknown; method?: unknown };
  return typeof method === "string" ? { id: idOf(id), method } : undefined;
}

/** Reads a body as JSON-RPC; undefined when it is not (the proxy also fronts plain HTTP services). */
export function parseJsonRpc(body: Buffer): JsonRpcBody | undefined {
  // Cheap guard so that bodies which cannot be JSON-RPC are never handed to JSON.parse.
  const first = body.find((byte) => byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09);
  if (first !== 0x7b && first !== 0x5b) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (Array.isArray(parsed)) {
    const calls = parsed.map(callOf);
    return calls.every((call) => call !== undefined) && calls.length > 0
      ? { batch: true, calls: calls as { id: JsonRpcId; method: string }[] }
      : undefined;
  }
  const call = callOf(parsed);
  return call ? { batch: false, calls: [call] } : undefined;
}

/**
 * The error answer for every call in the body, in the body's shape (an array for a batch). A body that is
 * not JSON-RPC gets one error with a null id, as JSON-RPC answers a request whose id it could not read.
 */
export function jsonRpcErrorBody(rpc: JsonRpcBody | undefined, code: number, message: string): string {
  const answer = (id: JsonRpcId) => ({ jsonrpc: "2.0", id, error: { code, message } });
  if (!rpc) return JSON.stringify(answer(null));
  return JSON.stringify(
    rpc.batch ? rpc.calls.map((call) => answer(call.id)) : answer(rpc.calls[0]?.id ?? null),
  );
}
