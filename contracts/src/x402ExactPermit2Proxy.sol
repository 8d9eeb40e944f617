// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ISignatureTransfer} from "./Permit2.sol";

/// @title x402ExactPermit2Proxy
/// @notice The Permit2 spender for x402 `exact` payments with `assetTransferMethod: "permit2"`. The payer signs
/// a Permit2 witness transfer naming this contract as spender and binding the destination and `validAfter`, so
/// whoever submits it can neither redirect nor pre-date the payment. Always moves the full permitted amount.
/// @dev Placed with `anvil_setCode` at 0x402085c248EeA27D92E8b30b2C58ed07f9E20001. The canonical contract takes
/// Permit2 as a constructor argument into an immutable; no constructor runs here, so the address is a constant.
/// The OZ guard treats its never-written slot (0) as "not entered", so it needs no constructor either.
contract x402ExactPermit2Proxy is ReentrancyGuard {
    ISignatureTransfer public constant PERMIT2 = ISignatureTransfer(0x000000000022D473030F116dDEE9F6B43aC78BA3);

    /// @dev Referenced types follow the primary one alphabetically, as EIP-712 encodeType requires.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";

    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");

    struct Witness {
        address to;
        uint256 validAfter;
    }

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

    function settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _settle(permit, owner, witness, signature);
        emit Settled();
    }

    /// @notice Like `settle`, but first tries the payer's EIP-2612 approval of Permit2. A failed permit only
    /// logs: it may have been front-run or already used, and an existing allowance can still pay.
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _executePermit(permit.permitted.token, owner, permit2612, permit.permitted.amount);
        _settle(permit, owner, witness, signature);
        emit SettledWithPermit();
    }

    function _settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        uint256 amount = permit.permitted.amount;
        // A zero transfer would still burn the payer's nonce.
        if (amount == 0) revert InvalidAmount();
        if (owner == address(0)) revert InvalidOwner();
        if (witness.to == address(0)) revert InvalidDestination();
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < witness.validAfter) revert PaymentTooEarly();

        PERMIT2.permitWitnessTransferFrom(
            permit,
            ISignatureTransfer.SignatureTransferDetails({to: witness.to, requestedAmount: amount}),
            owner,
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.validAfter)),
            WITNESS_TYPE_STRING,
            signature
        );
    }

    function _executePermit(address token, address owner, EIP2612Permit calldata permit2612, uint256 permittedAmount)
        private
    {
        if (permit2612.value != permittedAmount) revert Permit2612AmountMismatch();

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
