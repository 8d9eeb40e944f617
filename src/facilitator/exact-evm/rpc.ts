import { Pool } from "undici";
import { BaseError, HttpRequestError, TimeoutError, type Transport } from "viem";

/**
 * JSON-RPC calls made, by method, whichever client made them: what a payment costs the node, a figure that
 * machine speed does not move (a regression gate can hold it tightly).
 */
export class RpcCallCounter {
  private readonly counts = new Map<string, number>();
  count(method: string): void {
    this.counts.set(method, (this.counts.get(method) ?? 0) + 1);
  }
  byMethod(): ReadonlyMap<string, number> {
    return this.counts;
  }
}

/** A viem transport whose every call (batched or not) is counted first. */
export function countedTransport<T extends Transport>(transport: T, counter: RpcCallCounter): T {
  return ((parameters: Parameters<T>[0]) => {
    const inner = transport(parameters);
    return {
      ...inner,
      request: ((args: { method: string }, options?: unknown) => {
        counter.count(args.method);
        return (inner.request as (args: unknown, options?: unknown) => Promise<unknown>)(args, options);
      }) as typeof inner.request,
    };
  }) as T;
}

/**
 * A call that failed. `fromNode` is true when the node answered it with a JSON-RPC error (a revert, for
 * an `eth_call`), false when no answer came (transport failure, HTTP error, malformed response).
 */
export class JsonRpcError extends Error {
  override name = "JsonRpcError";
  constructor(
    message: string,
    readonly fromNode = false,
    readonly code?: number,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/**
 * The node gave no answer (refused, reset, timed out, not JSON-RPC), through our batcher or through viem:
 * nothing was decided, unlike a JSON-RPC error, which is the node's answer.
 */
export function isNodeUnreachable(error: unknown): boolean {
  if (error instanceof JsonRpcError) return !error.fromNode;
  return (
    error instanceof BaseError &&
    error.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError) !== null
  );
}

type Answer = { result?: unknown; error?: { code?: number; message?: string; data?: unknown } };

type Pending = {
  id: number;
  body: string;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
};

export type JsonRpcBatcherOptions = {
  /** Most calls in one JSON-RPC batch (default 100). */
  maxBatch?: number;
  /** Batches in flight at once; later calls wait and go out together in the next one (default 4). */
  maxInFlight?: number;
  /** Per HTTP request (default 15 s). */
  timeoutMs?: number;
  counter?: RpcCallCounter;
};

/**
 * A JSON-RPC client for the verification hot path: keep-alive connections (undici `Pool`), and every call
 * made in the same event-loop turn, or while `maxInFlight` batches are already out, sent together as one
 * JSON-RPC batch. Requests are written as text and answers parsed once, so a verification costs the node
 * one batch entry and this process a few microseconds, where viem's transport (fetch, a timer per batch,
 * request formatting) cost a few hundred.
 */
export class JsonRpcBatcher {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly timeoutMs: number;
  private readonly counter: RpcCallCounter | undefined;
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;
  private nextId = 1;

  constructor(url: string, options: JsonRpcBatcherOptions = {}) {
    const parsed = new URL(url);
    this.maxBatch = options.maxBatch ?? 100;
    this.maxInFlight = options.maxInFlight ?? 4;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.counter = options.counter;
    this.pool = new Pool(parsed.origin, { connections: this.maxInFlight, pipelining: 1 });
    this.path = `${parsed.pathname}${parsed.search}`;
  }

  /** Calls `method` with `params`, already JSON text (`[...]`). Rejects with {@link JsonRpcError}. */
  request(method: string, params: string): Promise<unknown> {
    this.counter?.count(method);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      if (this.nextId > 0x7fff_ffff) this.nextId = 1;
      const body = `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}`;
      this.queue.push({ id, body, resolve, reject });
      if (!this.scheduled && this.inFlight < this.maxInFlight) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private flush(): void {
    this.scheduled = false;
    // A node works through one batch on one thread, so the waiting calls are spread over every free
    // connection rather than sent as one long batch behind which the others idle.
    const free = this.maxInFlight - this.inFlight;
    const size = Math.min(this.maxBatch, Math.ceil(this.queue.length / Math.max(free, 1)));
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.splice(0, size);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0 && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
      });
    }
  }

  private async send(batch: Pending[]): Promise<void> {
    const single = batch.length === 1 ? batch[0] : undefined;
    let answers: unknown;
    try {
      const response = await this.pool.request({
        path: this.path,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: single ? single.body : `[${batch.map((p) => p.body).join(",")}]`,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const text = await response.body.text();
      if (response.statusCode < 200 || response.statusCode >= 300) {
        throw new JsonRpcError(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
      }
      answers = JSON.parse(text);
    } catch (error) {
      const failure =
        error instanceof Error ? error : new JsonRpcError(`JSON-RPC request failed: ${String(error)}`);
      for (const pending of batch) pending.reject(failure);
      return;
    }
    if (!single && !Array.isArray(answers)) {
      // The node refused the batch as a whole (no batching, a size limit): no call was run.
      const refusal = (answers as Answer | null)?.error?.message ?? "the node did not answer the batch";
      for (const pending of batch) pending.reject(new JsonRpcError(`JSON-RPC batch refused: ${refusal}`));
      return;
    }
    const list = Array.isArray(answers) ? answers : [answers];
    const byId = new Map<number, Answer>();
    for (const answer of list) {
      if (answer && typeof answer === "object" && typeof (answer as { id?: unknown }).id === "number") {
        byId.set((answer as { id: number }).id, answer as Answer);
      }
    }
    for (const pending of batch) {
      // A lone call's answer is taken whatever its id (some nodes answer a parse error with id null).
      const answer: Answer | undefined =
        byId.get(pending.id) ?? (single && list.length === 1 ? (list[0] as Answer) : undefined);
      if (!answer) pending.reject(new JsonRpcError("the node sent no answer for this call"));
      else if (answer.error) {
        pending.reject(
          new JsonRpcError(
            answer.error.message ?? "JSON-RPC error",
            true,
            answer.error.code,
            answer.error.data,
          ),
        );
      } else pending.resolve(answer.result);
    }
  }
}
