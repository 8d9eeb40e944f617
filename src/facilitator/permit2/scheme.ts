import { getAddress } from "viem";
import {
  isPermit2Payload,
  type Network,
  type PaymentPayload,
  type Permit2Kind,
  type Permit2Payload,
  parsePermit2Payload,
  type SettleResponse,
  type SupportedKind,
  type VerifyResponse,
} from "../../protocol/index.ts";
import type { SettlementOutcome } from "../exact-evm/settlement-batcher.ts";
import type { FacilitatorScheme, SchemeRequest, SettlementLoad } from "../scheme.ts";
import { eip2612InfoOf, eip2612Permit } from "./eip2612.ts";
import type { Eip2612Permit } from "./proxy-calls.ts";
import { type Permit2Options, Permit2Relaying } from "./relaying.ts";
import { verifyPermit2 } from "./verify.ts";

export type Permit2SchemeOptions = {
  /** Simulate again during settle: the SDK's default is off for `exact`, on for `upto`. */
  simulateInSettle?: boolean;
};

/**
 * A Permit2 payment scheme on an EVM chain: `exact` paid by Permit2 (served beside the EIP-3009 module of
 * `exact`, taking the payloads that carry `permit2Authorization`), or `upto`, metered up to a signed maximum.
 * Verification and settlement follow @x402/evm 2.27's facilitator step by step and code by code; what
 * differs is that a payment settles at most once (a repeat joins the first settle) and that the relayer
 * keys are a pool. Build both over one {@link Permit2Relaying} with {@link createPermit2Schemes}.
 */
export class Permit2Scheme implements FacilitatorScheme {
  readonly kinds: readonly SupportedKind[];
  readonly signers: Readonly<Record<string, readonly string[]>>;
  private readonly simulateInSettle: boolean;

  constructor(
    readonly scheme: Permit2Kind,
    private readonly relaying: Permit2Relaying,
    options: Permit2SchemeOptions = {},
    /** Whether this scheme reports the shared relaying's RPC calls and load (one of those sharing it does). */
    private readonly reports = true,
  ) {
    this.simulateInSettle = options.simulateInSettle ?? scheme === "upto";
    this.kinds = [
      {
        x402Version: 2,
        scheme,
        network: relaying.network,
        ...(scheme === "upto" ? { extra: { facilitatorAddress: relaying.uptoFacilitator } } : {}),
      },
    ];
    this.signers = { "eip155:*": relaying.relayers.addresses };
  }

  get rpcCalls() {
    return this.reports ? this.relaying.rpcCalls : undefined;
  }

  settlementLoad(): SettlementLoad {
    return this.reports ? this.relaying.settlementLoad() : { relayers: 0, busy: 0, queued: 0 };
  }

  /** `exact` shares its kinds with the EIP-3009 module: a payload with `permit2Authorization` is this one's. */
  accepts(request: SchemeRequest): boolean {
    return this.scheme === "upto" || isPermit2Payload(request.paymentPayload.payload);
  }

  async verify(request: SchemeRequest): Promise<VerifyResponse> {
    const payload = this.payloadOf(request.paymentPayload);
    if (!payload) return { isValid: false, invalidReason: "unsupported_payload_type", payer: "" };
    const payer = payload.permit2Authorization.from;
    const verdict = await this.check(request.paymentPayload, request.paymentRequirements, payload, true);
    return verdict.ok ? { isValid: true, payer } : { isValid: false, invalidReason: verdict.reason, payer };
  }

  async settle(request: SchemeRequest): Promise<SettleResponse> {
    const { paymentPayload: payment, paymentRequirements: requirements } = request;
    const network = payment.accepted.network as Network;
    const payload = this.payloadOf(payment);
    if (!payload) {
      return { success: false, errorReason: "unsupported_payload_type", transaction: "", network, payer: "" };
    }
    const payer = payload.permit2Authorization.from;
    const signed = BigInt(payload.permit2Authorization.permitted.amount);
    // upto is verified against its signed maximum, which the payer must still be able to cover; the amount
    // to settle is the requirements', checked against that maximum afterwards, as the SDK orders it.
    const against = this.scheme === "upto" ? { ...requirements, amount: signed.toString() } : requirements;
    // A payment already settling or settled is not simulated again (its nonce is spent, or about to be):
    // the checks without the chain say it is the same payment, and the repeat joins the first settle.
    const settlements = this.relaying.settlements;
    let verified = await this.check(
      payment,
      against,
      payload,
      this.simulateInSettle && !settlements.has(payload),
    );
    if (!verified.ok && this.simulateInSettle && settlements.has(payload)) {
      // A concurrent repeat settled it while this one simulated.
      verified = await this.check(payment, against, payload, false);
    }
    if (!verified.ok) {
      return { success: false, errorReason: verified.reason, transaction: "", network, payer };
    }
    const actual = BigInt(requirements.amount);
    if (this.scheme === "upto") {
      if (actual === 0n) return { success: true, transaction: "", network, payer, amount: "0" };
      if (actual > signed) {
        return {
          success: false,
          errorReason: "invalid_upto_evm_payload_settlement_exceeds_amount",
          transaction: "",
          network,
          payer,
        };
      }
    }
    let permit2612: Eip2612Permit | undefined;
    const info = eip2612InfoOf(payment);
    if (info) {
      try {
        permit2612 = eip2612Permit(info);
      } catch {}
      if (!permit2612) {
        // The SDK fails to split such a permit while sending, and reports it as a send error.
        return {
          success: false,
          errorReason: "invalid_exact_evm_transaction_failed: invalid EIP-2612 signature",
          transaction: "",
          network,
          payer,
        };
      }
    }
    const sender =
      this.scheme === "upto"
        ? getAddress(payload.permit2Authorization.witness.facilitator ?? "0x")
        : undefined;
    const { outcome, duplicate, amount } = await this.relaying.settlements.settle(
      this.scheme,
      payload,
      { amount: actual, permit2612 },
      sender,
    );
    const response = this.response(outcome, network, payer, amount ?? actual);
    // A repeat is told so: a resource server must not serve a second request on the strength of it.
    return duplicate ? { ...response, extra: { duplicate: true } } : response;
  }

  close(): Promise<void> {
    return this.relaying.close();
  }

  private response(
    outcome: SettlementOutcome,
    network: Network,
    payer: string,
    amount: bigint,
  ): SettleResponse {
    if (outcome.ok) {
      return {
        success: true,
        transaction: outcome.transaction,
        network,
        payer,
        ...(this.scheme === "upto" ? { amount: amount.toString() } : {}),
      };
    }
    // A send the node refused carries its message in the reason, as the SDK's `mapSettleError` does.
    const errorReason =
      outcome.transaction === "" &&
      outcome.reason === "invalid_exact_evm_transaction_failed" &&
      outcome.message
        ? `${outcome.reason}: ${outcome.message}`
        : outcome.reason;
    return { success: false, errorReason, transaction: outcome.transaction, network, payer };
  }

  /**
   * The payload typed, or undefined for an upto payload missing a string field (the SDK's shape guard:
   * `unsupported_payload_type`). Anything else malformed throws `invalid_payload` (HTTP 400), where the
   * SDK throws too.
   */
  private payloadOf(payment: PaymentPayload): Permit2Payload | undefined {
    if (this.scheme === "upto" && !hasUptoShape(payment.payload)) return undefined;
    return parsePermit2Payload(this.scheme, payment.payload);
  }

  private check(
    payment: PaymentPayload,
    requirements: SchemeRequest["paymentRequirements"],
    payload: Permit2Payload,
    simulate: boolean,
  ) {
    return verifyPermit2(
      this.scheme,
      { checks: this.relaying.checks, simulation: this.relaying.simulation },
      payment,
      requirements,
      payload,
      { simulate, facilitators: this.relaying.relayers.addresses },
    );
  }
}

/** The SDK's `isUptoPermit2Payload`: every field a string, the witness's facilitator included. */
function hasUptoShape(payload: unknown): boolean {
  const record = (value: unknown) =>
    typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  const p = record(payload);
  const a = record(p?.permit2Authorization);
  const permitted = record(a?.permitted);
  const witness = record(a?.witness);
  const strings = (r: Record<string, unknown> | undefined, fields: readonly string[]) =>
    r !== undefined && fields.every((f) => typeof r[f] === "string");
  return (
    typeof p?.signature === "string" &&
    strings(a, ["from", "spender", "nonce", "deadline"]) &&
    strings(permitted, ["token", "amount"]) &&
    strings(witness, ["to", "facilitator", "validAfter"])
  );
}

export type Permit2SchemesOptions = Permit2Options & {
  exact?: Permit2SchemeOptions;
  upto?: Permit2SchemeOptions;
};

/**
 * `exact` by Permit2 and `upto` on one chain, sharing relayer keys, connections and the settlement ledger
 * (the `exact` one reports their RPC calls and load for both). Register both beside the EIP-3009
 * `ExactEvmScheme`; the facilitator routes an `exact` payment by its payload.
 */
export function createPermit2Schemes(options: Permit2SchemesOptions): {
  exact: Permit2Scheme;
  upto: Permit2Scheme;
} {
  const relaying = new Permit2Relaying(options);
  return {
    exact: new Permit2Scheme("exact", relaying, options.exact),
    upto: new Permit2Scheme("upto", relaying, options.upto, false),
  };
}
