import { type Address, createPublicClient, getAddress, type Hash, type Hex, http } from "viem";
import { DEVNET_POLLING_MS, devnetChain, payoutSplitterAbi } from "../../chain/index.ts";
import {
  type ExactEvmPayload,
  isPermit2Payload,
  type Network,
  parseExactEvmPayload,
  type SettleResponse,
  type SupportedKind,
  type VerifyResponse,
  v1NetworkName,
} from "../../protocol/index.ts";
import type { FacilitatorScheme, SchemeRequest, SettlementLoad } from "../scheme.ts";
import { ChainChecks } from "./chain-checks.ts";
import { RelayerPool } from "./relayer.ts";
import { type ReorgEvent, ReorgGuard, type ReorgGuardOptions } from "./reorg-guard.ts";
import { countedTransport, JsonRpcBatcher, RpcCallCounter } from "./rpc.ts";
import { SettlementBatcher, type SettlementOutcome } from "./settlement-batcher.ts";
import { SettlementLedger } from "./settlement-ledger.ts";
import { verifyExactEvm } from "./verify.ts";

export type ExactEvmSchemeOptions = {
  /** JSON-RPC endpoint of the chain the payments settle on. */
  rpcUrl: string;
  /** Its chain id; the scheme serves `eip155:<chainId>` (and the v1 name, e.g. `base`, where one exists). */
  chainId: number;
  /** Private keys of the settlement relayers; each settles in parallel with the others. */
  relayerKeys: readonly Hex[];
  /** Most authorizations per settlement transaction (default 100). */
  maxBatch?: number;
  /** How long a settle waits for its receipt before answering `settlement_pending` (default 5 s). */
  receiptTimeoutMs?: number;
  /** Simulate the transfer during verify, as the reference does (default true). */
  simulate?: boolean;
  /** Simulate again during settle (default false, as the reference). */
  simulateInSettle?: boolean;
  /** How settlements dropped by a reorg are watched and put back (`false`: not at all). */
  reorgGuard?: Omit<ReorgGuardOptions, "onEvent"> | false;
  /** Told of each settlement a reorg dropped: put back, or lost (default: lost ones are a process warning). */
  onReorg?: (event: ReorgEvent) => void;
};

/**
 * Under the resource server's default facilitator timeout (10 s), so a slow block yields an answer the
 * server can act on (`settlement_pending`, retried once) rather than a timeout of its own.
 */
const DEFAULT_RECEIPT_TIMEOUT_MS = 5_000;

/** How often expired authorizations are dropped from the settlement ledger. */
const SWEEP_INTERVAL_MS = 60_000;

/** A settlement a reorg took and that could not be put back is a request served unpaid: say so. */
function warnOfLostSettlement(event: ReorgEvent): void {
  if (event.outcome === "lost") {
    process.emitWarning(
      `settlement ${event.hash} was dropped by a reorg and not mined again: ${event.reason}`,
      {
        code: "X402_SETTLEMENT_LOST",
      },
    );
  }
}

/** The `exact` scheme on an EVM chain with EIP-3009 tokens: verification and batched settlement. */
export class ExactEvmScheme implements FacilitatorScheme {
  readonly scheme = "exact";
  readonly kinds: readonly SupportedKind[];
  readonly signers: Readonly<Record<string, readonly string[]>>;
  readonly network: Network;
  /** What v1 answers name the network (`base`), or the CAIP-2 id where v1 has no name. */
  private readonly v1Network: Network;

  private readonly chain: ChainChecks;
  private readonly batcher: SettlementBatcher;
  private readonly relayers: RelayerPool;
  private readonly ledger = new SettlementLedger();
  private readonly client;
  private readonly splitters = new Map<Address, Promise<Address | undefined>>();
  private readonly rpc: JsonRpcBatcher;
  private readonly sendRpc: JsonRpcBatcher;
  private readonly sweeper: NodeJS.Timeout;
  private readonly reorgGuard: ReorgGuard | undefined;
  /** Every JSON-RPC call this scheme makes, through viem or its own batchers. */
  readonly rpcCalls = new RpcCallCounter();
  /** Settlements a reorg dropped, by what became of them. */
  readonly reorged = { resubmitted: 0, lost: 0 };

  constructor(private readonly options: ExactEvmSchemeOptions) {
    this.network = `eip155:${options.chainId}`;
    const v1Name = v1NetworkName(this.network);
    this.v1Network = (v1Name ?? this.network) as Network;
    const receiptTimeoutMs = options.receiptTimeoutMs ?? DEFAULT_RECEIPT_TIMEOUT_MS;
    this.kinds = [
      { x402Version: 2, scheme: "exact", network: this.network },
      ...(v1Name ? [{ x402Version: 1, scheme: "exact", network: v1Name as Network }] : []),
    ];
    // JSON-RPC batching packs the chain reads of concurrent verifications into few HTTP round trips.
    this.client = createPublicClient({
      chain: devnetChain(options.rpcUrl, options.chainId),
      transport: countedTransport(
        http(options.rpcUrl, { batch: { wait: 0, batchSize: 200 }, retryCount: 0 }),
        this.rpcCalls,
      ),
      pollingInterval: DEVNET_POLLING_MS,
    });
    // Transactions go out one per request (a node works through a JSON-RPC batch in order), on their own
    // connections so that a block being mined never holds up a verification's read.
    this.sendRpc = new JsonRpcBatcher(options.rpcUrl, {
      maxBatch: 1,
      maxInFlight: options.relayerKeys.length + 1,
      timeoutMs: receiptTimeoutMs + 5_000,
      counter: this.rpcCalls,
    });
    const onReorg = options.onReorg ?? warnOfLostSettlement;
    this.reorgGuard =
      options.reorgGuard === false
        ? undefined
        : new ReorgGuard(this.client, {
            ...options.reorgGuard,
            onEvent: (event) => {
              this.reorged[event.outcome] += 1;
              onReorg(event);
            },
          });
    const relayers = new RelayerPool(
      this.client,
      options.relayerKeys,
      {
        receiptTimeoutMs,
        onMined: this.reorgGuard?.watch.bind(this.reorgGuard),
      },
      this.sendRpc,
    );
    this.relayers = relayers;
    this.signers = { "eip155:*": relayers.addresses };
    this.rpc = new JsonRpcBatcher(options.rpcUrl, { counter: this.rpcCalls });
    this.chain = new ChainChecks(this.client, this.rpc);
    this.batcher = new SettlementBatcher(this.client, relayers, { maxBatch: options.maxBatch ?? 100 });
    this.sweeper = setInterval(() => this.forgetExpired(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /**
   * Authorizations whose settlement the scheme remembers, settled or pending, so that a repeat joins it:
   * one each, until it expires. What a long run holds is this, not the number of settle requests.
   */
  get remembered(): number {
    return this.ledger.size;
  }

  /** Every `exact` payment but a Permit2 one, which the Permit2 module (../permit2) takes. */
  accepts(request: SchemeRequest): boolean {
    return !isPermit2Payload(request.paymentPayload.payload);
  }

  settlementLoad(): SettlementLoad {
    return {
      relayers: this.relayers.addresses.length,
      busy: this.relayers.busy,
      queued: this.batcher.queued,
    };
  }

  /** Forgets the settlements of authorizations expired by `nowSeconds`, as the scheme does every minute. */
  forgetExpired(nowSeconds = Math.floor(Date.now() / 1000)): void {
    this.ledger.sweep(nowSeconds);
  }

  async verify(request: SchemeRequest): Promise<VerifyResponse> {
    const { payer, verdict } = await this.check(request, this.options.simulate ?? true);
    if (verdict.ok) return { isValid: true, payer };
    return { isValid: false, invalidReason: verdict.reason, invalidMessage: verdict.message, payer };
  }

  async settle(request: SchemeRequest): Promise<SettleResponse> {
    const network = this.responseNetwork(request);
    const { exact, payer, verdict } = await this.check(request, this.options.simulateInSettle ?? false);
    if (!verdict.ok) {
      return {
        success: false,
        errorReason: verdict.reason,
        errorMessage: verdict.message,
        transaction: "",
        network,
        payer,
      };
    }
    const asset = getAddress(request.paymentRequirements.asset);
    // Looked up before the ledger: between reading and recording the ledger nothing may await.
    const splitter = await this.splitterOf(getAddress(exact.authorization.to));
    const earlier = this.ledger.get(verdict.digest);
    let outcome: SettlementOutcome;
    if (earlier) {
      outcome = await earlier;
      if (!outcome.ok && outcome.reason === "settlement_pending" && outcome.transaction) {
        outcome = await this.ledger.resolvePending(
          verdict.digest,
          this.recheck(outcome.transaction, asset, exact, splitter),
        );
      }
    } else {
      outcome = await this.ledger.record(
        verdict.digest,
        Number(exact.authorization.validBefore),
        this.batcher.settle(asset, exact, splitter),
      );
    }
    const amount = request.paymentRequirements.amount;
    const response: SettleResponse = outcome.ok
      ? { success: true, transaction: outcome.transaction, network, payer, amount }
      : {
          success: false,
          errorReason: outcome.reason,
          errorMessage: outcome.message,
          transaction: outcome.transaction,
          network,
          payer,
        };
    // A repeat is told so: a resource server must not serve a second request on the strength of it.
    return earlier ? { ...response, extra: { duplicate: true } } : response;
  }

  private async check(request: SchemeRequest, simulate: boolean) {
    const exact = parseExactEvmPayload(request.paymentPayload.payload);
    const verdict = await verifyExactEvm(
      this.chain,
      request.paymentPayload,
      request.paymentRequirements,
      exact,
      {
        simulate,
        validBeforeBufferSeconds: 6,
      },
    );
    return { exact, payer: exact.authorization.from, verdict };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.reorgGuard?.close();
    await Promise.all([this.rpc.close(), this.sendRpc.close()]);
  }

  /**
   * A settle that timed out waiting for its receipt, asked again: the receipt decides if it has come; a
   * transaction the node still knows is still pending; one the node has dropped is sent once more (the
   * token's nonce guarantees that at most one of the two can ever move money).
   */
  private async recheck(
    transaction: Hash,
    asset: `0x${string}`,
    exact: ExactEvmPayload,
    splitter: Address | undefined,
  ): Promise<SettlementOutcome> {
    const receipt = await this.client.getTransactionReceipt({ hash: transaction }).catch(() => undefined);
    if (receipt) return this.batcher.outcomeOf(receipt, asset, exact);
    const known = await this.client.getTransaction({ hash: transaction }).catch(() => undefined);
    if (known) return { ok: false, reason: "settlement_pending", transaction };
    return this.batcher.settle(asset, exact, splitter);
  }

  /**
   * Whether a payee is a PayoutSplitter (it answers `payees()`), remembered per address: such a payment is
   * settled together with its distribution, so the clients need not know.
   */
  private splitterOf(payTo: Address): Promise<Address | undefined> {
    let known = this.splitters.get(payTo);
    if (!known) {
      known = this.client
        .readContract({ address: payTo, abi: payoutSplitterAbi, functionName: "payees" })
        .then(
          (payees) => (payees.length > 0 ? payTo : undefined),
          () => undefined,
        );
      this.splitters.set(payTo, known);
    }
    return known;
  }

  private responseNetwork(request: SchemeRequest): Network {
    if (request.x402Version === 1) return this.v1Network;
    return request.paymentRequirements.network;
  }
}
