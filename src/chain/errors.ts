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

export class ForkUnreachableError extends DevnetError {
  override name = "ForkUnreachableError";
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
