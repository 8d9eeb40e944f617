/** Every failure the devnet reports to a user: a short message plus what to do about it. */
export class DevnetError extends Error {
  override name = "DevnetError";
  constructor(
    message: string,
    readonly hint?: string,
    options?: ErrorOptions,
  ) {
    super(hint ? `${message}\n  ${hint}` : message, options);
  }
}

export class AnvilBinaryMissingError extends DevnetError {
  override name = "AnvilBinaryMissingError";
}

export class PortInUseError extends DevnetError {
  override name = "PortInUseError";
}

/** A JSON-RPC URL the user gave (a fork's upstream, a devnet to attach to) does not answer as one. */
export class RpcUnreachableError extends DevnetError {
  override name = "RpcUnreachableError";
}

export class ForkUnreachableError extends RpcUnreachableError {
  override name = "ForkUnreachableError";
}

/** The chain to attach to cannot carry a run: not anvil (no way to fund agents), or no USDC to pay in. */
export class UnusableChainError extends DevnetError {
  override name = "UnusableChainError";
}

export class ForkMissingUsdcError extends DevnetError {
  override name = "ForkMissingUsdcError";
}

export class AnvilStartError extends DevnetError {
  override name = "AnvilStartError";
}

/** anvil stopped producing blocks while transactions were waiting (a known anvil automine bug). */
export class ChainStalledError extends DevnetError {
  override name = "ChainStalledError";
}

/** An option the devnet cannot take: an unknown profile, or a hardfork it does not run. */
export class DevnetOptionError extends DevnetError {
  override name = "DevnetOptionError";
}
