// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ISignatureTransfer} from "./Permit2.sol";

/// @title x402BasePermit2Proxy
/// @notice What the x402 Permit2 proxies share: they are the Permit2 spender the payer signs for, and a witness
/// binds the destination and `validAfter`, so whoever submits a payment can neither redirect nor pre-date it.
/// @dev The proxies are placed with `anvil_setCode`. The canonical ones take Permit2 as a constructor argument
/// into an immutable; no constructor runs here, so the address is a constant. The OZ guard treats its
/// never-written slot (0) as "not entered", so it needs no constructor either.
abstract contract x402BasePermit2Proxy is ReentrancyGuard {
    ISignatureTransfer public constant PERMIT2 = ISignatureTransfer(0x000000000022D473030F116dDEE9F6B43aC78BA3);

    struct EIP2612Permit {
        uint256 value;
        uint256 deadline;
        bytes32 r;
        bytes32 s;
        uint8 v;
    }

    event Settled();
    event SettledWithPermit();
    event EIP2612PermitFailedWithReason(address indexed token, address indexed owner, string reason);
    event EIP2612PermitFailedWithPanic(address indexed token, address indexed owner, uint256 errorCode);
    event EIP2612PermitFailedWithData(address indexed token, address indexed owner, bytes data);

    /// @dev Only the canonical constructor can raise it; declared so the ABI matches the original.
    error InvalidPermit2Address();
    error InvalidDestination();
    error PaymentTooEarly();
    error InvalidOwner();
    error InvalidAmount();
    error Permit2612AmountMismatch();

    /// @param amount What moves; Permit2 itself refuses more than `permit.permitted.amount`.
    /// @param witness The proxy's witness struct hash, which must cover `to` and `validAfter`.
    function _settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        address to,
        uint256 validAfter,
        bytes32 witness,
        string memory witnessTypeString,
        bytes calldata signature
    ) internal {
        // A zero transfer would still burn the payer's nonce.
        if (amount == 0) revert InvalidAmount();
        if (owner == address(0)) revert InvalidOwner();
        if (to == address(0)) revert InvalidDestination();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < validAfter) revert PaymentTooEarly();

        PERMIT2.permitWitnessTransferFrom(
            permit,
            ISignatureTransfer.SignatureTransferDetails({to: to, requestedAmount: amount}),
            owner,
            witness,
            witnessTypeString,
            signature
        );
    }

    /// @notice Tries the payer's EIP-2612 approval of Permit2. A failed permit only logs: it may have been
    /// front-run or already used, and an existing allowance can still pay.
    function _executePermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner
    ) internal {
        if (permit2612.value != permit.permitted.amount) {
            revert Permit2612AmountMismatch();
        }

        address token = permit.permitted.token;
        try IERC20Permit(token)
            .permit(
                owner, address(PERMIT2), permit2612.value, permit2612.deadline, permit2612.v, permit2612.r, permit2612.s
            ) {}
        catch Error(string memory reason) {
            emit EIP2612PermitFailedWithReason(token, owner, reason);
        } catch Panic(uint256 errorCode) {
            emit EIP2612PermitFailedWithPanic(token, owner, errorCode);
        } catch (bytes memory data) {
            emit EIP2612PermitFailedWithData(token, owner, data);
        }
    }
}
