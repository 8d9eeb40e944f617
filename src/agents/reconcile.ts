import {
  type Account,
  type Address,
  type Chain,
  type Client,
  encodeFunctionData,
  type Hex,
  isAddressEqual,
  parseEventLogs,
  type Transport,
} from "viem";
import {
  getBlock,
  getTransactionReceipt,
  multicall,
  sendTransaction,
  waitForTransactionReceipt,
} from "viem/actions";
import { MULTICALL3_ADDRESS, mockUsdcAbi, multicall3Abi } from "../chain/index.ts";
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
    contracts: entries.map(
      ({ authorization }) =>
        ({
          address: authorization.asset,
          abi: mockUsdcAbi,
          functionName: "authorizationState",
          args: [authorizer, authorization.nonce],
        }) as const,
    ),
    // At the head, not at `block`: a pruned chain keeps only its newest blocks' state, and a newer block
    // only makes "unused by a block at or past validBefore" surer, since block times never go back.
    blockTag: "latest",
    multicallAddress: MULTICALL3_ADDRESS,
    allowFailure: true,
  });
  const cancelled = await cancelledBy(
    client,
    authorizer,
    entries.filter((entry, i) => states[i]?.result === true && entry.cancelTransaction),
  );
  entries.forEach(({ authorization }, i) => {
    const state = states[i];
    const { nonce } = authorization;
    let how: "used" | "dead" | undefined;
    if (state?.status !== "success") how = undefined;
    else if (state.result) how = cancelled.has(cancelKey(authorization.asset, nonce)) ? "dead" : "used";
    else if (block.timestamp >= authorization.validBefore) how = "dead";
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
  const entries = ledger.outstanding();
  const released: OutstandingAuthorization[] = [];
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
        const key = cancelKey(authorization.asset, authorization.nonce);
        if (cancelled.has(key) && ledger.settle(authorization.nonce, "dead")) {
          released.push(authorization);
        }
      }
    }
  }
  const rest = await reconcile(client, ledger, authorizer.address);
  return { ...rest, released: [...released, ...rest.released] };
}

/** The cancellations (`cancelKey`s) the transactions these entries remember did make. */
async function cancelledBy(
  client: ChainClient,
  authorizer: Address,
  entries: readonly OutstandingEntry[],
): Promise<Set<string>> {
  const hashes = new Set(entries.map((e) => e.cancelTransaction).filter((h) => h !== undefined));
  const cancelled = new Set<string>();
  for (const hash of hashes) {
    // Not mined (or dropped): it cancelled nothing, so whatever used the nonce was a settlement.
    const receipt = await getTransactionReceipt(client, { hash }).catch(() => undefined);
    if (receipt) for (const key of cancelledIn(receipt.logs, authorizer)) cancelled.add(key);
  }
  return cancelled;
}

/** `AuthorizationCanceled` events of `authorizer` in `logs`, as `cancelKey`s. */
function cancelledIn(logs: Parameters<typeof parseEventLogs>[0]["logs"], authorizer: Address): Set<string> {
  const events = parseEventLogs({ abi: mockUsdcAbi, eventName: "AuthorizationCanceled", logs });
  return new Set(
    events
      .filter((e) => isAddressEqual(e.args.authorizer, authorizer))
      .map((e) => cancelKey(e.address, e.args.nonce)),
  );
}

/** A nonce is only cancelled at the token that emitted the event. */
function cancelKey(asset: Address, nonce: Hex): string {
  return `${asset.toLowerCase()}|${nonce.toLowerCase()}`;
}
