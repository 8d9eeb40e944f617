import type { Dispatcher } from "undici";
import { type Account, type Address, getAddress, type Hex, hashTypedData, type LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { voucherTypedData } from "../protocol/batch-settlement.ts";
import {
  addressFromPrivateKey,
  authorizationFor,
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  decodeXPaymentResponseHeader,
  domainFromRequirements,
  type Eip3009Domain,
  type ExactEvmAuthorization,
  encodePaymentSignatureHeader,
  encodeXPaymentHeader,
  HEADER_KEY,
  type Network,
  type PaymentRequired,
  type PaymentRequiredV1,
  permit2Digest,
  permit2TypedData,
  type SettleResponse,
  SIWX_HEADER,
  signDigest,
  signTransferAuthorization,
  siweDigest,
  transferWithAuthorizationPrimaryType,
  transferWithAuthorizationTypes,
  typedDataMessage,
} from "../protocol/index.ts";
import { type Behaviour, behaviours } from "./behaviours.ts";
import {
  type Challenge,
  challengeFromPaymentRequired,
  challengeFromResponse,
  type Offer,
} from "./challenge.ts";
import {
  AgentChannels,
  type ChannelRefund,
  type ChannelSummary,
  type ChannelWithdrawal,
} from "./channels.ts";
import {
  DEFAULT_TIMEOUT_MS,
  header,
  type PreparedRequest,
  prepareRequest,
  type ReadResponse,
  redirectTarget,
  send,
  serverTimings,
  sharedDispatcher,
  toWhatwgResponse,
  type WireCounts,
} from "./http.ts";
import {
  type Claim,
  type OutstandingAuthorization,
  type PaymentRecord,
  type SignedPayment,
  SpendLedger,
} from "./ledger.ts";
import type { AgentPaymentMethod, PaymentSigner } from "./payment-methods.ts";
import { channelLimits, compilePolicy, type SpendingPolicy } from "./policy.ts";
import {
  type Authorizer,
  type ChainClient,
  cancelAuthorizationTypes,
  cancelOutstanding,
  type Reconciliation,
  reconcile,
} from "./reconcile.ts";
import { PolicyError } from "./refusal.ts";
import type { AgentResult, AgentTimings } from "./result.ts";
import { SiwxCredentials, type SiwxProof, type SiwxSigner } from "./siwx.ts";

export type { AgentOutcome, AgentResult, AgentTimings } from "./result.ts";

/**
 * Anything that can sign the EIP-3009 message: a key (the fast path), or a viem account; sessions need the
 * account's `signMessage` too.
 */
export type AgentAccount =
  | { privateKey: Hex }
  | (Pick<LocalAccount, "address" | "signTypedData"> & Partial<Pick<LocalAccount, "signMessage">>);

export type AgentOptions = {
  /** The payer's key; signs natively, ~60 µs a payment. */
  privateKey?: Hex;
  /** Instead of `privateKey`: a wallet-pool entry, or a viem account (signs through viem, slower). */
  account?: AgentAccount;
  policy?: SpendingPolicy;
  /** How payments are made (default `behaviours.honest`). */
  behaviour?: Behaviour;
  /** Speak only this x402 version, like a client that knows no other (default: v2, else v1). */
  x402Version?: 1 | 2;
  /** Connection pool (default: one keep-alive pool shared by all agents). */
  dispatcher?: Dispatcher;
  /**
   * Sign in with the wallet (`sign-in-with-x`) instead of paying again for a resource this agent already
   * paid for, where the server offers it (default true: an agent that paid has no reason to pay twice, and
   * servers without sessions never offer it).
   */
  sessions?: boolean;
  /**
   * Longest wait for a response's headers, and as long again for its body, per HTTP request (default
   * 30_000 ms). A deadline, not an idle timer: a server that trickles bytes cannot hold the agent forever.
   */
  timeoutMs?: number;
  /**
   * The salt of every payment channel this agent opens (default: 32 random bytes per agent, so each agent
   * opens channels of its own). An agent given an earlier agent's key and salt meets that agent's channels.
   */
  channelSalt?: Hex;
};

export type PayOptions = RequestInit & {
  /** A PaymentRequired (v2) or v1 402 body from an earlier response, e.g. `agent.probe()`'s. */
  requirements: PaymentRequired | PaymentRequiredV1;
};

export type Agent = {
  /** Checksummed payer address. */
  readonly address: Address;
  /**
   * `fetch` with payments: a WHATWG Response (a refused payment answers its 402 or 400); throws the
   * {@link PolicyError} when the policy refuses, and a TypeError when no response came.
   */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>;
  /** Request → 402 → pay → paid response, measured; never throws. */
  request(input: string | URL, init?: RequestInit): Promise<AgentResult>;
  /** Pays a cached challenge on the first request, skipping the 402 round trip; never throws. */
  pay(input: string | URL, options: PayOptions): Promise<AgentResult>;
  /** The challenge a URL answers with (following redirects), undefined when it is free; throws on refusal. */
  probe(input: string | URL, init?: RequestInit): Promise<PaymentRequired | PaymentRequiredV1 | undefined>;
  /**
   * Money the books count as gone: payments servers accepted (for a channel, each request's charge),
   * plus authorizations `reconcile` found used on chain although their server said no. The sum of
   * `payments`.
   */
  readonly spent: bigint;
  /**
   * Signed authorizations not spent and not proven dead (in flight, or {@link outstanding}), plus claims
   * about to be signed, plus the money of payment channels neither charged nor refunded (see
   * `ChannelFunds`). Every budget counts `spent + reserved`.
   */
  readonly reserved: bigint;
  /**
   * What `spent` is made of, in the order the books learnt of them: a new array on every read, since the
   * books keep payments compactly rather than as these objects.
   */
  readonly payments: readonly PaymentRecord[];
  /**
   * Authorizations whose request ended without the server accepting them (a refusal, an error, no
   * answer) and that the chain has not proven dead: whoever holds one can settle it until `validBefore`.
   */
  readonly outstanding: readonly OutstandingAuthorization[];
  /**
   * Settles the books against the chain, as of its latest block: outstanding authorizations the chain
   * used are charged (`spent`, `payments` with `confirmedBy: "chain"`); unused ones in a block at or after
   * their `validBefore` are released, with their budget and URL slot.
   */
  reconcile(client: ChainClient): Promise<Reconciliation>;
  /**
   * Cancels every outstanding authorization on chain (EIP-3009 `cancelAuthorization`, signed by the agent,
   * sent from `client`'s account or else from the agent's key, which then needs ETH for gas), releasing
   * them, then reconciles the rest (one a server settled first is charged).
   */
  cancelOutstanding(client: ChainClient): Promise<Reconciliation>;
  /** The agent's `batch-settlement` payment channels, as its books know them: a new array on every read. */
  readonly channels: readonly ChannelSummary[];
  /**
   * Asks the servers for a refund of every channel's money beyond its charges (only the channels last
   * paid at `url`, when given, and at that URL), and books what came back: it leaves the budgets'
   * reservation and counts for them again. With `client`, what came back is read from the chain (and
   * claims beyond the reported charges are booked as spent); without it, the server's receipt is taken,
   * up to what the channel holds beyond its charges.
   */
  refundChannels(url?: string | URL, client?: ChainClient): Promise<ChannelRefund[]>;
  /**
   * For servers that do not refund: starts the channels' timed withdrawal on chain (sent from the agent's
   * key, or `client`'s account when it is the payer's). The books change only when it is finalized.
   */
  initiateWithdraw(client: ChainClient): Promise<ChannelWithdrawal[]>;
  /** Finishes the withdrawals whose delay has passed, and books each channel by what the chain shows. */
  finalizeWithdraw(client: ChainClient): Promise<ChannelWithdrawal[]>;
};

type Signer = Authorizer &
  PaymentSigner & {
    /** EIP-191, for SIWX proofs; absent for an account that cannot sign messages. */
    signMessage: SiwxSigner["signMessage"] | undefined;
  };

const cancelMessage = (domain: Eip3009Domain, authorizer: Address, nonce: Hex) =>
  ({
    domain: {
      ...domain,
      chainId: Number(domain.chainId),
      verifyingContract: domain.verifyingContract as Address,
    },
    types: cancelAuthorizationTypes,
    primaryType: "CancelAuthorization",
    message: { authorizer, nonce },
  }) as const;

function signerFor(options: AgentOptions): Signer {
  const account = options.account ?? (options.privateKey ? { privateKey: options.privateKey } : undefined);
  if (!account) throw new TypeError("createAgent needs a privateKey or an account");
  if ("privateKey" in account) {
    const { privateKey } = account;
    const address = getAddress(addressFromPrivateKey(privateKey));
    let viemAccount: LocalAccount | undefined;
    // Built on first use only: swarms of agents that never cancel should not pay for viem accounts.
    const local = () => {
      viemAccount ??= privateKeyToAccount(privateKey);
      return viemAccount;
    };
    return {
      address,
      signTransfer: (domain, authorization) => signTransferAuthorization(privateKey, domain, authorization),
      // Native secp256k1 over viem's digest: viem's signTypedData would add ~1 ms a payment.
      signPermit2: (kind, chainId, authorization) =>
        signDigest(privateKey, permit2Digest(kind, chainId, authorization)),
      // Native secp256k1 over the EIP-191 digest: ~0.1 ms a proof against ~0.5 ms through viem's signMessage.
      signMessage: (message) => signDigest(privateKey, siweDigest(message)),
      signDeposit: (typedData) =>
        signDigest(privateKey, hashTypedData(typedData as Parameters<typeof hashTypedData>[0])),
      signVoucher: (_chainId, _channelId, _max, digest) => signDigest(privateKey, digest),
      signCancel: (domain, nonce) => local().signTypedData(cancelMessage(domain, address, nonce)),
      get payer() {
        return local();
      },
    };
  }
  const { signMessage } = account;
  const address = getAddress(account.address);
  return {
    address,
    signMessage: signMessage && ((message) => signMessage({ message })),
    signCancel: (domain, nonce) => account.signTypedData(cancelMessage(domain, address, nonce)),
    // A full viem local account can also sign the cancelling transaction; a bare signer cannot.
    payer:
      "signTransaction" in account && (account as Account).type === "local"
        ? (account as Account)
        : undefined,
    signTransfer: (domain, a) =>
      account.signTypedData({
        domain: {
          ...domain,
          chainId: Number(domain.chainId),
          verifyingContract: domain.verifyingContract as Address,
        },
        types: transferWithAuthorizationTypes,
        primaryType: transferWithAuthorizationPrimaryType,
        message: typedDataMessage(a),
      }),
    signPermit2: (kind, chainId, a) =>
      account.signTypedData(
        permit2TypedData(kind, chainId, a) as Parameters<LocalAccount["signTypedData"]>[0],
      ),
    signDeposit: (typedData) =>
      account.signTypedData(typedData as Parameters<LocalAccount["signTypedData"]>[0]),
    signVoucher: (chainId, channelId, max) =>
      account.signTypedData(voucherTypedData(chainId, channelId, max)),
  };
}

type Verdict = {
  receipt: SettleResponse | undefined;
  /** Set when the server did not serve the paid request. */
  errorCode: string | undefined;
};

/** The server's verdict on a payment, from its receipt, its status, and the code of a refusal. */
function readVerdict(response: ReadResponse, version: 1 | 2): Verdict {
  const receiptHeader = header(
    response.headers,
    version === 1 ? HEADER_KEY.xPaymentResponse : HEADER_KEY.paymentResponse,
  );
  let receipt: SettleResponse | undefined;
  try {
    if (receiptHeader) {
      receipt =
        version === 1
          ? decodeXPaymentResponseHeader(receiptHeader)
          : decodePaymentResponseHeader(receiptHeader);
    }
  } catch {
    receipt = undefined;
  }
  if (receipt && !receipt.success) return { receipt, errorCode: receipt.errorReason ?? "settlement_failed" };
  if (response.status < 400) return { receipt, errorCode: undefined };

  let code: unknown;
  const required = header(response.headers, HEADER_KEY.paymentRequired);
  if (response.status === 402 && required && version === 2) {
    try {
      code = decodePaymentRequiredHeader(required).error;
    } catch {
      code = undefined;
    }
  }
  return { receipt, errorCode: errorCodeOf(response, code) };
}

/** The code a refusal names (`code`, else the body's `error`), or `http_<status>` when it names none. */
function errorCodeOf(response: ReadResponse, code?: unknown): string {
  // v1 402s, and the 400 / 5xx answers of servers and the official middleware, say it in the body.
  code ??= (parseBody(response) as { error?: unknown } | undefined)?.error;
  return typeof code === "string" && code ? code : `http_${response.status}`;
}

function parseBody(response: ReadResponse): unknown {
  if (response.body.length === 0) return undefined;
  const text = Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength).toString(
    "utf8",
  );
  const type = header(response.headers, "content-type");
  if (type && /\bjson\b/i.test(type)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/** A receipt's `amount`, when it is a whole number of atomic units. */
function toCharged(amount: string): bigint | undefined {
  return /^\d+$/.test(amount) ? BigInt(amount) : undefined;
}

function transportCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.name : "unexpected_error";
}

/** The books' view of an authorization about to be signed for `offer`. */
function paymentOf(
  offer: Offer,
  method: AgentPaymentMethod,
  url: string,
  resourceKey: string,
  authorization: ExactEvmAuthorization,
): SignedPayment {
  return {
    path: method.path,
    url,
    resourceKey,
    x402Version: offer.x402Version,
    amount: BigInt(authorization.value),
    asset: offer.requirements.asset as Address,
    // The policy pays only offers on a network it knows.
    network: offer.network as Network,
    // A behaviour may sign for another recipient than the offer's: the books follow the signature.
    payTo: authorization.to === offer.payTo ? offer.payTo : getAddress(authorization.to),
    nonce: authorization.nonce as Hex,
    validBefore: BigInt(authorization.validBefore),
  };
}

/** Internal: how a call ended, before it is shaped for `request()` / `fetch()`. */
type Exchange = {
  result: AgentResult;
  response: ReadResponse | undefined;
};

/** Creates an agent: one payer with its policy, budgets and behaviour. */
export function createAgent(options: AgentOptions): Agent {
  const signer = signerFor(options);
  const policy = compilePolicy(options.policy);
  // The budgets are the ledger's: it keeps the state they are checked against.
  const ledger = new SpendLedger(options.policy ?? {});
  const behaviour = options.behaviour ?? behaviours.honest;
  const dispatcher = options.dispatcher ?? sharedDispatcher();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let previousHeader: string | undefined;
  const { signMessage } = signer;
  const sessions =
    options.sessions !== false && signMessage
      ? new SiwxCredentials({ address: signer.address, signMessage })
      : undefined;

  const sendOnce = (url: URL, request: PreparedRequest, headers?: Record<string, string>) =>
    send(dispatcher, url, request, headers ?? request.headers, timeoutMs);
  const channels = new AgentChannels({
    signer,
    ledger,
    ...channelLimits(options.policy),
    salt: options.channelSalt,
    checkHost: (url) => policy.checkHost(url),
    send: sendOnce,
    verdict: (response) => readVerdict(response, 2),
    prepare: () => prepareRequest(undefined),
    transportCode,
  });

  /** Sends the request, following redirects with every hop checked against the allowed hosts. */
  const follow = async (url: URL, request: PreparedRequest): Promise<ReadResponse> => {
    let current = { url, request };
    for (let hops = 0; ; hops++) {
      policy.checkHost(current.url);
      const response = await sendOnce(current.url, current.request);
      const next = redirectTarget(response, current.request);
      if (!next) return response;
      if (hops >= policy.maxRedirects) {
        throw new PolicyError(
          "too_many_redirects",
          `more than ${policy.maxRedirects} redirects from ${url.href}`,
        );
      }
      current = next;
    }
  };

  /**
   * Policy, reservation, behaviour, paid request and verdict, for a challenge from `url`. `requested` is
   * the URL the caller asked for, before redirects: the per-URL limit counts it, so a server cannot open
   * new slots by redirecting somewhere new each time.
   */
  const payChallenge = async (
    requested: URL,
    url: URL,
    request: PreparedRequest,
    challenge: Challenge,
    started: number,
    timings: AgentTimings,
  ): Promise<Exchange> => {
    const signStarted = performance.now();
    const { offer, method } = policy.choose(challenge);
    // The URL without its fragment: what the server charges for.
    const resource = `${url.origin}${url.pathname}${url.search}`;
    const resourceKey = policy.resourceKey(requested);
    if (method.channel) {
      const payment = {
        url,
        request,
        challenge,
        offer,
        method,
        resource,
        resourceKey,
        started,
        signStarted,
        timings,
      };
      return channels.pay(payment);
    }
    const first = ledger.reserve(resourceKey, offer.amount);
    const attempt = {
      amount: offer.amount,
      payTo: offer.payTo,
      asset: offer.requirements.asset as Address,
      path: method.path,
    };
    // Every authorization the behaviour has signed, with the header it became: each is money from the
    // moment it exists, whether or not it is the one sent.
    const signed: { claim: Claim; header?: string }[] = [];
    let spare: Claim | undefined = first;
    const sign = (authorization: ExactEvmAuthorization): string | Promise<string> => {
      // A behaviour signing more than once needs a claim (and budget) for each signature.
      const claim = spare ?? ledger.reserve(resourceKey, BigInt(authorization.value));
      spare = undefined;
      const entry: { claim: Claim; header?: string } = { claim };
      const domain = domainFromRequirements(offer.requirements);
      try {
        claim.sign(paymentOf(offer, method, resource, resourceKey, authorization), domain);
      } catch (error) {
        claim.release();
        throw error;
      }
      signed.push(entry);
      const encoded = encodePayment(challenge, offer, method, authorization, domain);
      if (typeof encoded === "string") {
        entry.header = encoded;
        return encoded;
      }
      return encoded.then((header) => {
        entry.header = header;
        return header;
      });
    };
    let paymentHeader: string;
    try {
      paymentHeader = await behaviour({
        x402Version: offer.x402Version,
        requirements: offer.requirements,
        authorization: authorizationFor(signer.address, offer.requirements, offer.payTo),
        previous: previousHeader,
        sign,
      });
    } catch (error) {
      first.release();
      for (const { claim } of signed) claim.keep();
      throw error;
    }
    // The claim of the authorization this request carries; none when the behaviour sent an old header or
    // none at all, which puts no new money at risk.
    let carried: Claim | undefined;
    for (const entry of signed) {
      if (!carried && entry.header === paymentHeader) carried = entry.claim;
      else entry.claim.keep();
    }
    first.release();
    previousHeader = paymentHeader;
    const paidStarted = performance.now();
    timings.sign = paidStarted - signStarted;

    const headerKey = offer.x402Version === 1 ? HEADER_KEY.xPayment : HEADER_KEY.paymentSignature;
    let response: ReadResponse;
    try {
      // Sent to the URL that asked for it, never through a redirect: the header must not reach another host.
      response = await sendOnce(url, request, { ...request.headers, [headerKey]: paymentHeader });
    } catch (error) {
      // The server may have received the payment and may still settle it.
      carried?.keep();
      const ended = performance.now();
      timings.paid = ended - paidStarted;
      timings.e2e = ended - started;
      return {
        result: {
          status: 0,
          outcome: "error",
          errorCode: transportCode(error),
          ...attempt,
          network: offer.network,
          timings,
          error: error as Error,
          url: url.href,
        },
        response: undefined,
      };
    }
    const ended = performance.now();
    timings.paid = ended - paidStarted;
    timings.e2e = ended - started;
    Object.assign(timings, serverTimings(response.headers));

    const { receipt, errorCode } = readVerdict(response, offer.x402Version);
    const base = { status: response.status, ...attempt, network: offer.network, timings, url: url.href };
    if (errorCode === undefined) {
      const transaction = receipt?.transaction ? (receipt.transaction as Hex) : undefined;
      carried?.accept(transaction);
      sessions?.paid(url, response.headers);
      // A metered path's receipt says what was settled; the books still count the signed maximum.
      const charged = method.metered && receipt?.amount ? toCharged(receipt.amount) : undefined;
      return {
        result: {
          ...base,
          outcome: "paid",
          ...(transaction ? { transaction } : {}),
          ...(charged === undefined ? {} : { charged }),
        },
        response,
      };
    }
    // Refused or failed, the server still holds a valid signature it can settle until it expires.
    carried?.keep();
    return { result: { ...base, outcome: "payment_failed", errorCode }, response };
  };

  const encodePayment = (
    challenge: Challenge,
    offer: Offer,
    method: AgentPaymentMethod,
    authorization: ExactEvmAuthorization,
    domain: Eip3009Domain,
  ): string | Promise<string> => {
    const finish = (payload: Record<string, unknown>) =>
      offer.x402Version === 1
        ? encodeXPaymentHeader({
            x402Version: 1,
            scheme: offer.requirements.scheme,
            network: offer.v1Network as Network,
            payload,
          })
        : encodePaymentSignatureHeader({
            x402Version: 2,
            ...(challenge.resource ? { resource: challenge.resource } : {}),
            accepted: offer.requirements,
            payload,
            ...(challenge.extensions ? { extensions: challenge.extensions } : {}),
          });
    const payload = method.payload(signer, offer.requirements, authorization, domain);
    return payload instanceof Promise ? payload.then(finish) : finish(payload);
  };

  /** Sent to `url` only, never through a redirect: a proof is for the origin that asked for it. */
  const sendProof = (url: URL, request: PreparedRequest, proof: SiwxProof) =>
    sendOnce(url, request, { ...request.headers, [SIWX_HEADER]: proof.header });

  /** A proof, with the time spent signing it added to `timings.sign`. */
  const timedProof = async (
    timings: AgentTimings,
    make: () => Promise<SiwxProof | undefined>,
  ): Promise<SiwxProof | undefined> => {
    const signStarted = performance.now();
    const proof = await make();
    if (proof) timings.sign = (timings.sign ?? 0) + (performance.now() - signStarted);
    return proof;
  };

  /** The server answered a proof without asking for payment: served (`session`) or failed (`error`). */
  const signedIn = (
    url: URL,
    response: ReadResponse,
    proof: SiwxProof,
    started: number,
    timings: AgentTimings,
  ): Exchange => {
    timings.e2e = performance.now() - started;
    sessions?.observe(url, response.headers, response.status < 400 ? proof : undefined);
    const errorCode = response.status >= 400 ? errorCodeOf(response) : undefined;
    return {
      result: {
        status: response.status,
        outcome: errorCode ? "error" : "session",
        ...(errorCode ? { errorCode } : {}),
        timings,
        url: url.href,
      },
      response,
    };
  };

  /**
   * Answers a 402 from `url`: with a SIWX proof for its challenge when this agent paid for the resource
   * before (or, right after a proof, when the server refused that proof with an `invalid_siwx_*` code), and
   * by paying when that is not possible or the server still asks for payment.
   */
  const answer402 = async (
    requested: URL,
    url: URL,
    request: PreparedRequest,
    response: ReadResponse,
    proofSent: boolean,
    started: number,
    timings: AgentTimings,
  ): Promise<Exchange> => {
    let last = response;
    try {
      const first = challengeFromResponse(last.headers, last.body, options.x402Version);
      let { challenge } = first;
      const signIn = proofSent
        ? first.paymentRequired.error?.startsWith("invalid_siwx_") === true
        : sessions?.hasPaid(url) === true;
      const proof =
        signIn && sessions
          ? await timedProof(timings, () => sessions.answer(url, challenge.extensions))
          : undefined;
      if (proof) {
        last = await sendProof(url, request, proof);
        if (last.status !== 402) return signedIn(url, last, proof, started, timings);
        ({ challenge } = challengeFromResponse(last.headers, last.body, options.x402Version));
      }
      return await payChallenge(requested, url, request, challenge, started, timings);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      timings.e2e = performance.now() - started;
      const result: AgentResult = {
        status: 402,
        outcome: "refused_by_policy",
        errorCode: error.reason,
        timings,
        error,
        url: last.url.href,
      };
      return { result, response: last };
    }
  };

  /** The whole flow for one call; throws PolicyError and transport errors for the caller to shape. */
  const exchange = async (
    input: string | URL,
    init: RequestInit | undefined,
    cached: PaymentRequired | PaymentRequiredV1 | undefined,
    started: number,
    wire: WireCounts,
  ): Promise<Exchange> => {
    const request = await prepareRequest(init);
    request.wire = wire;
    const url = new URL(input);
    const timings: AgentTimings = { e2e: 0 };
    if (cached) {
      policy.checkHost(url);
      return payChallenge(url, url, request, challengeFromPaymentRequired(cached), started, timings);
    }
    if (sessions?.hasPaid(url)) {
      policy.checkHost(url);
      const proof = await timedProof(timings, () => sessions.ready(url));
      if (proof) {
        const response = await sendProof(url, request, proof);
        if (response.status !== 402) return signedIn(url, response, proof, started, timings);
        return answer402(url, url, request, response, true, started, timings);
      }
    }
    const response = await follow(url, request);
    if (response.status !== 402) {
      timings.e2e = performance.now() - started;
      Object.assign(timings, serverTimings(response.headers));
      // Only a served request is free: a paid route failing with a 5xx, 404 or 403 is an error to count.
      const failed = response.status >= 400;
      return {
        result: {
          status: response.status,
          outcome: failed ? "error" : "free",
          ...(failed ? { errorCode: `http_${response.status}` } : {}),
          timings,
          url: response.url.href,
        },
        response,
      };
    }
    timings.challenge = performance.now() - started;
    return answer402(url, response.url, request, response, false, started, timings);
  };

  /** `exchange` that never throws: refusals and transport errors become results. */
  const settled = async (
    input: string | URL,
    init: RequestInit | undefined,
    cached: PaymentRequired | PaymentRequiredV1 | undefined,
    started: number,
  ): Promise<Exchange> => {
    const wire: WireCounts = { roundTrips: 0, bytesSent: 0, bytesReceived: 0 };
    try {
      const done = await exchange(input, init, cached, started, wire);
      done.result.wire = wire;
      return done;
    } catch (error) {
      const e2e = performance.now() - started;
      if (error instanceof PolicyError) {
        return {
          result: {
            status: 0,
            outcome: "refused_by_policy",
            errorCode: error.reason,
            timings: { e2e },
            error,
            wire,
          },
          response: undefined,
        };
      }
      return {
        result: {
          status: 0,
          outcome: "error",
          errorCode: transportCode(error),
          timings: { e2e },
          error: error as Error,
          wire,
        },
        response: undefined,
      };
    }
  };

  const withBody = ({ result, response }: Exchange): AgentResult => {
    if (!response) return result;
    const body = parseBody(response);
    return body === undefined ? result : { ...result, body };
  };

  return {
    address: signer.address,
    async fetch(input, init) {
      const { result, response } = await settled(input, init, undefined, performance.now());
      if (result.error instanceof PolicyError) throw result.error;
      if (response) return toWhatwgResponse(response);
      throw new TypeError("fetch failed", { cause: result.error });
    },
    async request(input, init) {
      return withBody(await settled(input, init, undefined, performance.now()));
    },
    async pay(input, { requirements, ...init }) {
      return withBody(await settled(input, init, requirements, performance.now()));
    },
    async probe(input, init) {
      const response = await follow(new URL(input), await prepareRequest(init));
      if (response.status !== 402) return undefined;
      // A copy: the decoded header is shared by every agent that meets it, and the caller may change theirs.
      return structuredClone(
        challengeFromResponse(response.headers, response.body, options.x402Version).paymentRequired,
      );
    },
    get spent() {
      return ledger.spent;
    },
    get reserved() {
      return ledger.reserved;
    },
    get payments() {
      return ledger.payments;
    },
    get outstanding() {
      return ledger.outstanding().map((entry) => entry.authorization);
    },
    reconcile: (client) => reconcile(client, ledger, signer.address),
    cancelOutstanding: (client) => cancelOutstanding(client, ledger, signer),
    get channels() {
      return channels.list();
    },
    refundChannels: (url, client) => channels.refund(url === undefined ? undefined : new URL(url), client),
    initiateWithdraw: (client) => channels.initiateWithdraw(client),
    finalizeWithdraw: (client) => channels.finalizeWithdraw(client),
  };
}
