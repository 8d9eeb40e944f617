// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC3009DepositCollector} from "../../src/ERC3009DepositCollector.sol";
import {ISignatureTransfer} from "../../src/Permit2.sol";
import {Permit2DepositCollector} from "../../src/Permit2DepositCollector.sol";
import {x402BatchSettlement} from "../../src/x402BatchSettlement.sol";
import {Permit2Fixture} from "./Permit2Fixture.sol";

/// @dev The batch-settlement contracts as the devnet places them: runtime code etched at the canonical addresses
/// on chain 8453, beside MockUSDC and Permit2, with no constructor run. Every digest is built here from the
/// EIP-712 type strings the SDK signs with, never read back from the contract, so a wrong typehash, domain or
/// encoding in the contract shows up as a signature failure.
abstract contract BatchFixture is Permit2Fixture {
    address internal constant BATCH_ADDRESS = 0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003;
    address internal constant ERC3009_COLLECTOR_ADDRESS = 0x4020806089470a89826cB9fB1f4059150b550004;
    address internal constant PERMIT2_COLLECTOR_ADDRESS = 0x4020425FAf3B746C082C2f942b4E5159887B0005;
    /// @dev What the canonical contract reports on Base (x402-schemes §1.2).
    bytes32 internal constant BASE_BATCH_DOMAIN_SEPARATOR =
        0xd8d982716899b0e20cf2c1e706a37b8a892c83fdd4ac9b540cfeec11f9c73a39;

    bytes32 internal constant CHANNEL_CONFIG_TYPEHASH = keccak256(
        "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
    );
    bytes32 internal constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint128 maxClaimableAmount)");
    bytes32 internal constant REFUND_TYPEHASH = keccak256("Refund(bytes32 channelId,uint256 nonce,uint128 amount)");
    bytes32 internal constant CLAIM_ENTRY_TYPEHASH =
        keccak256("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");
    bytes32 internal constant CLAIM_BATCH_TYPEHASH = keccak256(
        "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
    );
    bytes32 internal constant DEPOSIT_PERMIT_WITNESS_TYPEHASH = keccak256(
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,DepositWitness witness)DepositWitness(bytes32 channelId)TokenPermissions(address token,uint256 amount)"
    );

    x402BatchSettlement internal batch;

    /// @dev The voucher key the SDK client delegates to (payerAuthorizer) and the receiver side's signing key.
    uint256 internal payerAuthPk = 0xDE1E6A7E;
    uint256 internal receiverAuthPk = 0x5EC1E7;
    address internal payerAuth;
    address internal receiverAuth;

    uint256 private _saltCounter;

    function setUp() public virtual override {
        super.setUp();
        payerAuth = vm.addr(payerAuthPk);
        receiverAuth = vm.addr(receiverAuthPk);
        vm.etch(BATCH_ADDRESS, type(x402BatchSettlement).runtimeCode);
        vm.etch(ERC3009_COLLECTOR_ADDRESS, type(ERC3009DepositCollector).runtimeCode);
        vm.etch(PERMIT2_COLLECTOR_ADDRESS, type(Permit2DepositCollector).runtimeCode);
        batch = x402BatchSettlement(BATCH_ADDRESS);
    }

    // ---------------------------------------------------------------- channels

    /// @dev alice pays bob; vouchers are signed by a delegated key, as the SDK client does by default.
    function defaultConfig() internal view returns (x402BatchSettlement.ChannelConfig memory) {
        return x402BatchSettlement.ChannelConfig({
            payer: alice,
            payerAuthorizer: payerAuth,
            receiver: bob,
            receiverAuthorizer: receiverAuth,
            token: BASE_USDC,
            withdrawDelay: 900,
            salt: bytes32(0)
        });
    }

    function batchDomainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("x402 Batch Settlement"), keccak256("1"), block.chainid, BATCH_ADDRESS
            )
        );
    }

    function batchDigest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", batchDomainSeparator(), structHash));
    }

    function channelIdOf(x402BatchSettlement.ChannelConfig memory c) internal view returns (bytes32) {
        return batchDigest(
            keccak256(
                abi.encode(
                    CHANNEL_CONFIG_TYPEHASH,
                    c.payer,
                    c.payerAuthorizer,
                    c.receiver,
                    c.receiverAuthorizer,
                    c.token,
                    c.withdrawDelay,
                    c.salt
                )
            )
        );
    }

    function voucherDigest(bytes32 channelId, uint128 max) internal view returns (bytes32) {
        return batchDigest(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, max)));
    }

    function refundDigest(bytes32 channelId, uint256 nonce, uint128 amount) internal view returns (bytes32) {
        return batchDigest(keccak256(abi.encode(REFUND_TYPEHASH, channelId, nonce, amount)));
    }

    function claimBatchDigest(x402BatchSettlement.VoucherClaim[] memory rows) internal view returns (bytes32) {
        bytes memory entries;
        for (uint256 i; i < rows.length; ++i) {
            entries = bytes.concat(
                entries,
                keccak256(
                    abi.encode(
                        CLAIM_ENTRY_TYPEHASH,
                        channelIdOf(rows[i].voucher.channel),
                        rows[i].voucher.maxClaimableAmount,
                        rows[i].totalClaimed
                    )
                )
            );
        }
        return batchDigest(keccak256(abi.encode(CLAIM_BATCH_TYPEHASH, keccak256(entries))));
    }

    // ---------------------------------------------------------------- vouchers and claims

    function voucherRow(x402BatchSettlement.ChannelConfig memory c, uint256 signerPk, uint128 max, uint128 claimed)
        internal
        view
        returns (x402BatchSettlement.VoucherClaim memory row)
    {
        row.voucher = x402BatchSettlement.Voucher({channel: c, maxClaimableAmount: max});
        row.signature = packed(signerPk, voucherDigest(channelIdOf(c), max));
        row.totalClaimed = claimed;
    }

    function one(x402BatchSettlement.VoucherClaim memory row)
        internal
        pure
        returns (x402BatchSettlement.VoucherClaim[] memory rows)
    {
        rows = new x402BatchSettlement.VoucherClaim[](1);
        rows[0] = row;
    }

    function signClaims(x402BatchSettlement.VoucherClaim[] memory rows) internal view returns (bytes memory) {
        return packed(receiverAuthPk, claimBatchDigest(rows));
    }

    function signRefund(bytes32 channelId, uint256 nonce, uint128 amount) internal view returns (bytes memory) {
        return packed(receiverAuthPk, refundDigest(channelId, nonce, amount));
    }

    // ---------------------------------------------------------------- deposits

    /// @dev collectorData for the ERC-3009 collector, signed by `payerPk` as the SDK client signs it.
    function erc3009Data(uint256 payerPk, x402BatchSettlement.ChannelConfig memory c, uint256 amount)
        internal
        returns (bytes memory)
    {
        uint256 salt = uint256(keccak256(abi.encode("deposit salt", ++_saltCounter)));
        uint256 validBefore = block.timestamp + 1 hours;
        bytes32 nonce = keccak256(abi.encode(channelIdOf(c), salt));
        bytes32 digest = typedDigest(
            c.token,
            keccak256(abi.encode(RECEIVE_TYPEHASH, c.payer, ERC3009_COLLECTOR_ADDRESS, amount, 0, validBefore, nonce))
        );
        return abi.encode(uint256(0), validBefore, salt, packed(payerPk, digest));
    }

    function depositErc3009(x402BatchSettlement.ChannelConfig memory c, uint128 amount) internal {
        batch.deposit(c, amount, ERC3009_COLLECTOR_ADDRESS, erc3009Data(alicePk, c, amount));
    }

    /// @dev collectorData for the Permit2 collector, witness bound to the channel, no EIP-2612 segment.
    function permit2Data(
        uint256 payerPk,
        x402BatchSettlement.ChannelConfig memory c,
        uint256 amount,
        bytes memory eip2612
    ) internal returns (bytes memory) {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(c.token, amount);
        bytes32 witness = keccak256(abi.encode(keccak256("DepositWitness(bytes32 channelId)"), channelIdOf(c)));
        bytes32 digest = permit2Digest(
            keccak256(
                abi.encode(
                    DEPOSIT_PERMIT_WITNESS_TYPEHASH,
                    tokenPermissionsHash(p),
                    PERMIT2_COLLECTOR_ADDRESS,
                    p.nonce,
                    p.deadline,
                    witness
                )
            )
        );
        return abi.encode(p.nonce, p.deadline, packed(payerPk, digest), eip2612);
    }

    function channelState(bytes32 channelId) internal view returns (uint128 balance, uint128 totalClaimed) {
        return batch.channels(channelId);
    }
}
