import {
  type Account,
  type Address,
  type Chain,
  type Client,
  encodeFunctionData,
  type Hex,
  isAddressEqual,
  parseAbiItem,
  parseEventLogs,
  type Transport,
} from "viem";
import {
  getBlock,
  getLogs,
  getTransactionReceipt,
  multicall,
  readContract,
  sendTransaction,
  waitForTransactionReceipt,
} from "viem/actions";
import {
  MULTICALL3_ADDRESS,
  mockUsdcAbi,
  multicall3Abi,
  PERMIT2_ADDRESS,
  permit2Abi,
} from "../chain/index.ts";
import type { Eip3009Domain } from "../protocol/index.ts";
import type { OutstandingAuthorization, OutstandingEntry, SpendLedger } from "./ledger.ts";

/**
 * A viem client on the chain the agent paid on (a devnet's `client` will do). `cancelOutstanding` sends
 * from its account when it has one.
 */
export type ChainClient = Client<Transport, Chain | undefined, Account | undefined>;

/** What the chain proved about the agent's outstanding authorizations. */
export type Reconciliation = {
  /** Used on chain although their server did not accept them: now in `spent` and `payments`. */
  charged: OutstandingAuthorization[];
  /** Proven dead (expired unused, or cancelled): their budgets and URL slots are free again. */
  released: OutstandingAuthorization[];
  /** Still cashable by whoever holds them. */
  outstanding: OutstandingAuthorization[];
};

/** EIP-3009's cancel message; the token checks it against the authorizer, EOA or ERC-1271 wallet. */
export const cancelAuthorizationTypes = {
  CancelAuthorization: [
    { name: "authorizer", type: "address" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

/** What reconciling and cancelling need of the agent. */
export type Authorizer = {
  address: Address;
  signCancel(domain: Eip3009Domain, nonce: Hex): Promise<Hex>;
  /** An account that can pay gas for the cancellation, when the client has none. */
  payer: Account | undefined;
};

// A cancellation costs ~35k gas: a hundred fit a block with room to spare on any chain.
const CANCELS_PER_TRANSACTION = 100;

/** Permit2's nonces are bits of per-owner 256-bit words: where an authorization's nonce sits. */
function permit2Slot(nonce: Hex): { word: bigint; bit: bigint } {
  const value = BigInt(nonce);
  return { word: value >> 8n, bit: value & 0xffn };
}

const transferEvent = parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)");

// A channel deposit by EIP-3009 spends a token nonce like an exact payment does.
const usesPermit2 = (authorization: OutstandingAuthorization) => authorization.path.endsWith("/permit2");

/** The read that tells whether an authorization's nonce is spent: the token's for EIP-3009, Permit2's bitmap. */
function nonceRead(authorizer: Address, authorization: OutstandingAuthorization) {
  if (usesPermit2(authorization)) {
    const { word } = permit2Slot(authorization.nonce);
    return {
      address: PERMIT2_ADDRESS,
      abi: permit2Abi,
      functionName: "nonceBitmap",
      args: [authorizer, word],
    } as const;
  }
  return {
    address: authorization.asset,
    abi: mockUsdcAbi,
    functionName: "authorizationState",
    args: [authorizer, authorization.nonce],
  } as const;
}

/**
 * Whether a block at `timestamp` (and so every later one) refuses the authorization: the token takes an
 * EIP-3009 one only below `validBefore`, Permit2 one up to its deadline inclusive.
 */
function expiredBy(authorization: OutstandingAuthorization, timestamp: bigint): boolean {
  return usesPermit2(authorization)
    ? timestamp > authorization.validBefore
    : timestamp >= authorization.validBefore;
}

function nonceSpent(authorization: OutstandingAuthorization, result: unknown): boolean {
  if (typeof result === "bigint") return ((result >> permit2Slot(authorization.nonce).bit) & 1n) === 1n;
  return result === true;
}

/**
 * Reads, as of the latest block, whether each outstanding authorization was used, and settles the books:
 * used → spent; unused in a block at or after its `validBefore` → dead, since the token only takes it in
 * blocks before that and block times never go back. The rest stay outstanding. `authorizationState` is
 * true for a cancelled nonce too, so a used nonce is spent unless this agent's own cancellation is seen
 * mined for it.
 */
export async function reconcile(
  client: ChainClient,
  ledger: SpendLedger,
  authorizer: Address,
): Promise<Reconciliation> {
  const entries = ledger.outstanding();
  const result: Reconciliation = { charged: [], released: [], outstanding: [] };
  if (entries.length === 0) return result;
  const block = await getBlock(client, { blockTag: "latest" });
  const states = await multicall(client, {
    contracts: entries.map(({ authorization }) => nonceRead(authorizer, authorization)),
    // At the head, not at `block`: a pruned chain keeps only its newest blocks' state, and a newer block
    // only makes "unused by a block at or past validBefore" surer, since block times never go back.
    blockTag: "latest",
    multicallAddress: MULTICALL3_ADDRESS,
    allowFailure: true,
  });
  const spent = entries.map(
    ({ authorization }, i) => states[i]?.status === "success" && nonceSpent(authorization, states[i]?.result),
  );
  const cancelled = await cancelledBy(
    client,
    authorizer,
    entries.filter((entry, i) => spent[i] && entry.cancelTransaction),
  );
  entries.forEach(({ authorization }, i) => {
    const state = states[i];
    const { nonce } = authorization;
    let how: "used" | "dead" | undefined;
    if (state?.status !== "success") how = undefined;
    else if (spent[i]) how = cancelled.has(authorization) ? "dead" : "used";
    else if (expiredBy(authorization, block.timestamp)) how = "dead";
    if (how === undefined || !ledger.settle(nonce, how)) {
      if (how === undefined) result.outstanding.push(authorization);
      return;
    }
    (how === "used" ? result.charged : result.released).push(authorization);
  });
  return result;
}

/**
 * Cancels every outstanding authorization on chain (EIP-3009 `cancelAuthorization`, signed by the agent,
 * sent through Multicall3 by the client's account or else the agent's own key), then reconciles: a
 * cancellation that lost the race to a settlement leaves its authorization used, and charged.
 */
export async function cancelOutstanding(
  client: ChainClient,
  ledger: SpendLedger,
  authorizer: Authorizer,
): Promise<Reconciliation> {
  const all = ledger.outstanding();
  const released: OutstandingAuthorization[] = [];
  const entries = all.filter((e) => !usesPermit2(e.authorization));
  if (entries.length > 0) {
    const account = client.account ?? authorizer.payer;
    if (!account) {
      throw new TypeError("cancelOutstanding needs a client with an account, or an agent with a private key");
    }
    for (let start = 0; start < entries.length; start += CANCELS_PER_TRANSACTION) {
      const chunk = entries.slice(start, start + CANCELS_PER_TRANSACTION);
      const calls = await Promise.all(
        chunk.map(async ({ authorization, domain }) => ({
          target: authorization.asset,
          // One refusal (a nonce used meanwhile) must not undo the other cancellations.
          allowFailure: true,
          callData: encodeFunctionData({
            abi: mockUsdcAbi,
            functionName: "cancelAuthorization",
            args: [
              authorizer.address,
              authorization.nonce,
              await authorizer.signCancel(domain, authorization.nonce),
            ],
          }),
        })),
      );
      const hash = await sendTransaction(client, {
        account,
        chain: client.chain ?? null,
        to: MULTICALL3_ADDRESS,
        data: encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3", args: [calls] }),
      });
      ledger.cancelling(
        chunk.map((e) => e.authorization.nonce),
        hash,
      );
      const receipt = await waitForTransactionReceipt(client, { hash });
      const cancelled = cancelledIn(receipt.logs, authorizer.address);
      for (const { authorization } of chunk) {
        if (cancelled.has(authorization) && ledger.settle(authorization.nonce, "dead")) {
          released.push(authorization);
        }
      }
    }
  }
  released.push(
    ...(await invalidatePermit2Nonces(
      client,
      ledger,
      authorizer,
      all.filter((e) => usesPermit2(e.authorization)),
    )),
  );
  const rest = await reconcile(client, ledger, authorizer.address);
  return { ...rest, released: [...released, ...rest.released] };
}

/**
 * Invalidates the Permit2 nonces of outstanding Permit2 authorizations, one transaction per nonce word,
 * and releases those it proves died unused. Permit2 takes `invalidateUnorderedNonces` from the owner only,
 * so it is sent from the agent's own key (which then needs ETH for gas). Unlike EIP-3009's cancel it sets
 * bits a settlement may have set first and emits its event all the same, so the event proves nothing: a
 * nonce is released only when its bit was clear in the block before and nothing moved the owner's tokens
 * earlier in the invalidation's own block. Any other is left to `reconcile`, which charges it.
 */
async function invalidatePermit2Nonces(
  client: ChainClient,
  ledger: SpendLedger,
  authorizer: Authorizer,
  entries: readonly OutstandingEntry[],
): Promise<OutstandingAuthorization[]> {
  const released: OutstandingAuthorization[] = [];
  if (entries.length === 0) return released;
  const account =
    authorizer.payer ??
    (client.account && isAddressEqual(client.account.address, authorizer.address)
      ? client.account
      : undefined);
  if (!account) {
    throw new TypeError(
      "cancelling a Permit2 authorization needs the agent's own key: Permit2 takes it from the owner only",
    );
  }
  const byWord = new Map<bigint, OutstandingEntry[]>();
  for (const entry of entries) {
    const { word } = permit2Slot(entry.authorization.nonce);
    byWord.set(word, [...(byWord.get(word) ?? []), entry]);
  }
  for (const [word, inWord] of byWord) {
    const mask = inWord.reduce((bits, e) => bits | (1n << permit2Slot(e.authorization.nonce).bit), 0n);
    const hash = await sendTransaction(client, {
      account,
      chain: client.chain ?? null,
      to: PERMIT2_ADDRESS,
      data: encodeFunctionData({
        abi: permit2Abi,
        functionName: "invalidateUnorderedNonces",
        args: [word, mask],
      }),
    });
    const receipt = await waitForTransactionReceipt(client, { hash });
    if (receipt.status !== "success") continue;
    const [before, transfers] = await Promise.all([
      readContract(client, {
        address: PERMIT2_ADDRESS,
        abi: permit2Abi,
        functionName: "nonceBitmap",
        args: [authorizer.address, word],
        blockNumber: receipt.blockNumber - 1n,
      }),
      getLogs(client, {
        blockHash: receipt.blockHash,
        event: transferEvent,
        args: { from: authorizer.address },
      }),
    ]);
    if (transfers.some((t) => t.transactionIndex < receipt.transactionIndex)) continue;
    for (const { authorization } of inWord) {
      const unused = ((before >> permit2Slot(authorization.nonce).bit) & 1n) === 0n;
      if (unused && ledger.settle(authorization.nonce, "dead")) released.push(authorization);
    }
  }
  return released;
}

/** What this agent's own EIP-3009 cancellations did cancel. */
type Cancelled = { has(authorization: OutstandingAuthorization): boolean };

/** The cancellations the transactions these entries remember did make. */
async function cancelledBy(
  client: ChainClient,
  authorizer: Address,
  entries: readonly OutstandingEntry[],
): Promise<Cancelled> {
  const hashes = new Set(entries.map((e) => e.cancelTransaction).filter((h) => h !== undefined));
  const logs: Parameters<typeof parseEventLogs>[0]["logs"] = [];
  for (const hash of hashes) {
    // Not mined (or dropped): it cancelled nothing, so whatever used the nonce was a settlement.
    const receipt = await getTransactionReceipt(client, { hash }).catch(() => undefined);
    if (receipt) logs.push(...receipt.logs);
  }
  return cancelledIn(logs, authorizer);
}

/**
 * `AuthorizationCanceled` events of `authorizer` in `logs`: the token refuses to cancel a used nonce, so
 * each proves its authorization died unused (a nonce is only cancelled at the token that emitted it).
 * Permit2 nonces never count here (see `invalidatePermit2Nonces`).
 */
function cancelledIn(logs: Parameters<typeof parseEventLogs>[0]["logs"], authorizer: Address): Cancelled {
  const cancelled = new Set(
    parseEventLogs({ abi: mockUsdcAbi, eventName: "AuthorizationCanceled", logs })
      .filter((e) => isAddressEqual(e.args.authorizer, authorizer))
      .map((e) => `${e.address.toLowerCase()}|${e.args.nonce.toLowerCase()}`),
  );
  return {
    has: (authorization) =>
      !usesPermit2(authorization) &&
      cancelled.has(`${authorization.asset.toLowerCase()}|${authorization.nonce.toLowerCase()}`),
  };
}
