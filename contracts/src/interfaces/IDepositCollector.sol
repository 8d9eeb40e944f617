// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IDepositCollector
/// @notice How x402BatchSettlement pulls a deposit: the collector moves `amount` of `token` from `payer` to its
/// caller by whatever authorization `collectorData` carries. The batch contract does not trust it to: it checks
/// its own balance rose by exactly `amount`.
interface IDepositCollector {
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata collectorData)
        external;
}

/// @title DepositCollector
/// @notice A collector serves one batch contract only. Were `collect` open to anyone, whoever saw a payer's
/// authorization in the mempool could spend it into a channel of their own making.
/// @dev Collectors are placed with `anvil_setCode`, so the batch contract's address cannot come from a
/// constructor: it is the canonical one, built in. A collector compiled against another address would reject
/// the real batch contract, which is why it is a constant and not a parameter.
abstract contract DepositCollector is IDepositCollector {
    /// @dev Named as the original's immutable getter, so the ABI (`x402BatchSettlement()`) is the same.
    // forge-lint: disable-next-line(screaming-snake-case-const)
    address public constant x402BatchSettlement = 0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003;

    error OnlyX402BatchSettlement();
    /// @dev Only the canonical constructor can raise it; declared so the ABI matches the original.
    error InvalidX402BatchSettlementAddress();

    modifier onlyx402BatchSettlement() {
        if (msg.sender != x402BatchSettlement) revert OnlyX402BatchSettlement();
        _;
    }
}
