// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISignatureTransfer} from "./Permit2.sol";
import {x402BasePermit2Proxy} from "./x402BasePermit2Proxy.sol";

/// @title x402ExactPermit2Proxy
/// @notice The Permit2 spender for x402 `exact` payments with `assetTransferMethod: "permit2"`. Always moves the
/// full permitted amount, so the submitter chooses nothing about the payment.
/// @dev Placed with `anvil_setCode` at 0x402085c248EeA27D92E8b30b2C58ed07f9E20001.
contract x402ExactPermit2Proxy is x402BasePermit2Proxy {
    /// @dev Referenced types follow the primary one alphabetically, as EIP-712 encodeType requires.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";

    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");

    struct Witness {
        address to;
        uint256 validAfter;
    }

    function settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _settleExact(permit, owner, witness, signature);
        emit Settled();
    }

    /// @notice Like `settle`, but first tries the payer's EIP-2612 approval of Permit2.
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _executePermit(permit2612, permit, owner);
        _settleExact(permit, owner, witness, signature);
        emit SettledWithPermit();
    }

    function _settleExact(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        _settle(
            permit,
            permit.permitted.amount,
            owner,
            witness.to,
            witness.validAfter,
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.validAfter)),
            WITNESS_TYPE_STRING,
            signature
        );
    }
}
