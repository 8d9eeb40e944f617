// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISignatureTransfer} from "./Permit2.sol";
import {x402BasePermit2Proxy} from "./x402BasePermit2Proxy.sol";

/// @title x402UptoPermit2Proxy
/// @notice The Permit2 spender for x402 `upto` (metered) payments. The payer signs a maximum; the facilitator
/// moves the metered amount, anything up to it. Choosing the amount is power over the payer's funds, so the
/// witness also names the one facilitator allowed to exercise it.
/// @dev Placed with `anvil_setCode` at 0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002. Permit2 spends the nonce
/// whatever the amount, so one signature settles once even when it moved less than the maximum.
contract x402UptoPermit2Proxy is x402BasePermit2Proxy {
    /// @dev Referenced types follow the primary one alphabetically, as EIP-712 encodeType requires.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";

    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,address facilitator,uint256 validAfter)");

    struct Witness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    /// @dev Permit2 would refuse too (`InvalidAmount(uint256)`); checking first names the error in this ABI.
    error AmountExceedsPermitted();
    error UnauthorizedFacilitator();

    function settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _checkUpto(permit, amount, witness);
        _settleUpto(permit, amount, owner, witness, signature);
        emit Settled();
    }

    /// @notice Like `settle`, but first tries the payer's EIP-2612 approval of Permit2. The approval must equal
    /// the signed maximum, not the metered amount: the client signs both for the same ceiling.
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _checkUpto(permit, amount, witness);
        _executePermit(permit2612, permit, owner);
        _settleUpto(permit, amount, owner, witness, signature);
        emit SettledWithPermit();
    }

    function _checkUpto(ISignatureTransfer.PermitTransferFrom calldata permit, uint256 amount, Witness calldata witness)
        private
        view
    {
        if (amount > permit.permitted.amount) revert AmountExceedsPermitted();
        // The signature alone would let anyone who saw it settle first, for any smaller amount.
        if (msg.sender != witness.facilitator) revert UnauthorizedFacilitator();
    }

    function _settleUpto(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        _settle(
            permit,
            amount,
            owner,
            witness.to,
            witness.validAfter,
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.facilitator, witness.validAfter)),
            WITNESS_TYPE_STRING,
            signature
        );
    }
}
