// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {DepositCollector} from "./interfaces/IDepositCollector.sol";

/// @dev The one EIP-3009 entry point the collector uses: the bytes-signature overload of USDC v2.2, which also
/// accepts EIP-1271 signatures from smart-account payers.
interface IERC3009Receive {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
}

/// @title ERC3009DepositCollector
/// @notice Collects a batch-settlement deposit with the payer's EIP-3009 `ReceiveWithAuthorization`.
/// @dev `receiveWithAuthorization` only pays its caller (that is what stops front-running the authorization
/// as a plain transfer), so the tokens land here and are forwarded to the batch contract in the same call.
/// The authorization nonce is derived from the channel, so a signature made for one channel cannot fund
/// another: `keccak256(abi.encode(channelId, salt))`, `salt` travelling in `collectorData`.
contract ERC3009DepositCollector is DepositCollector {
    using SafeERC20 for IERC20;

    /// @param collectorData `abi.encode(uint256 validAfter, uint256 validBefore, uint256 salt, bytes signature)`.
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata collectorData)
        external
        override
        onlyx402BatchSettlement
    {
        (uint256 validAfter, uint256 validBefore, uint256 salt, bytes memory signature) =
            abi.decode(collectorData, (uint256, uint256, uint256, bytes));
        IERC3009Receive(token)
            .receiveWithAuthorization(
                payer, address(this), amount, validAfter, validBefore, keccak256(abi.encode(channelId, salt)), signature
            );
        IERC20(token).safeTransfer(x402BatchSettlement, amount);
    }
}
