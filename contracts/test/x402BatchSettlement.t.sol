// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IDepositCollector} from "../src/interfaces/IDepositCollector.sol";
import {x402BatchSettlement} from "../src/x402BatchSettlement.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";
import {OwnedWallet} from "./utils/Wallets.sol";

/// @dev Delivers less than asked, as a fee-on-transfer token or a buggy collector would.
contract ShortCollector is IDepositCollector {
    function collect(address payer, address token, uint256 amount, bytes32, bytes calldata) external {
        (bool ok,) =
            token.call(abi.encodeWithSignature("transferFrom(address,address,uint256)", payer, msg.sender, amount - 1));
        require(ok, "short transfer failed");
    }
}

/// @dev Calls back into the batch contract mid-deposit, which the guard must refuse.
contract ReentrantCollector is IDepositCollector {
    function collect(address, address token, uint256, bytes32, bytes calldata) external {
        x402BatchSettlement(msg.sender).settle(address(this), token);
    }
}

contract x402BatchSettlementTest is BatchFixture {
    uint128 internal constant DEPOSIT = 10_000;

    // ---------------------------------------------------------------- identity

    function test_domainSeparatorAtTheCanonicalAddressIsBases() public view {
        assertEq(batchDomainSeparator(), BASE_BATCH_DOMAIN_SEPARATOR, "fixture separator");
        // The contract exposes only digests: a digest over a zero struct hash pins its separator.
        bytes32 expected = keccak256(
            abi.encodePacked(
                hex"1901", BASE_BATCH_DOMAIN_SEPARATOR, keccak256(abi.encode(VOUCHER_TYPEHASH, bytes32(0), uint128(0)))
            )
        );
        assertEq(batch.getVoucherDigest(bytes32(0), 0), expected, "voucher digest under Base's separator");
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifying,,) =
            batch.eip712Domain();
        assertEq(uint256(uint8(fields)), 0x0f, "ERC-5267 fields");
        assertEq(name, "x402 Batch Settlement", "name");
        assertEq(version, "1", "version");
        assertEq(chainId, 8453, "chain id");
        assertEq(verifying, BATCH_ADDRESS, "verifying contract");
    }

    function test_digestsFollowTheSdkTypes() public view {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        assertEq(batch.getChannelId(c), id, "channel id");
        assertEq(batch.getVoucherDigest(id, 123), voucherDigest(id, 123), "voucher");
        assertEq(batch.getRefundDigest(id, 7, 55), refundDigest(id, 7, 55), "refund");
        x402BatchSettlement.VoucherClaim[] memory rows = new x402BatchSettlement.VoucherClaim[](2);
        rows[0] = voucherRow(c, payerAuthPk, 500, 400);
        c.salt = bytes32(uint256(1));
        rows[1] = voucherRow(c, payerAuthPk, 900, 900);
        assertEq(batch.getClaimBatchDigest(rows), claimBatchDigest(rows), "claim batch");
        assertEq(
            batch.getClaimBatchDigest(new x402BatchSettlement.VoucherClaim[](0)),
            claimBatchDigest(new x402BatchSettlement.VoucherClaim[](0)),
            "empty claim batch"
        );
        assertEq(batch.MIN_WITHDRAW_DELAY(), 900, "min delay");
        assertEq(batch.MAX_WITHDRAW_DELAY(), 2_592_000, "max delay");
    }

    function testFuzz_channelIdBindsEveryField(address payer, address receiver, uint40 delay, bytes32 salt)
        public
        view
    {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.payer = payer;
        c.receiver = receiver;
        c.withdrawDelay = delay;
        c.salt = salt;
        assertEq(batch.getChannelId(c), channelIdOf(c), "channel id");
    }

    // ---------------------------------------------------------------- deposit

    function test_depositOpensTheChannelOnce() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        bytes memory data = erc3009Data(alicePk, c, DEPOSIT);
        vm.expectEmit(true, false, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.ChannelCreated(id, c);
        vm.expectEmit(true, true, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.Deposited(id, relayer, DEPOSIT, DEPOSIT);
        vm.prank(relayer);
        batch.deposit(c, DEPOSIT, ERC3009_COLLECTOR_ADDRESS, data);

        vm.recordLogs();
        depositErc3009(c, 5);
        assertEq(
            vm.getRecordedLogs().length,
            4,
            "second deposit: two token transfers, an AuthorizationUsed and Deposited only"
        );
        (uint128 balance, uint128 claimed) = channelState(id);
        assertEq(balance, DEPOSIT + 5, "balance");
        assertEq(claimed, 0, "claimed");
        assertEq(usdc.balanceOf(BATCH_ADDRESS), DEPOSIT + 5, "escrow");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - DEPOSIT - 5, "payer");
        assertEq(usdc.balanceOf(ERC3009_COLLECTOR_ADDRESS), 0, "collector keeps nothing");
    }

    function test_depositRejectsIncompleteChannels() public {
        bytes memory data = erc3009Data(alicePk, defaultConfig(), DEPOSIT);
        for (uint256 field; field < 4; ++field) {
            x402BatchSettlement.ChannelConfig memory c = defaultConfig();
            if (field == 0) c.payer = address(0);
            if (field == 1) c.receiver = address(0);
            if (field == 2) c.receiverAuthorizer = address(0);
            if (field == 3) c.token = address(0);
            vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidChannel.selector));
            batch.deposit(c, DEPOSIT, ERC3009_COLLECTOR_ADDRESS, data);
        }
        // payerAuthorizer is optional: zero means the payer signs vouchers itself.
        x402BatchSettlement.ChannelConfig memory open = defaultConfig();
        open.payerAuthorizer = address(0);
        depositErc3009(open, DEPOSIT);
        (uint128 balance,) = channelState(channelIdOf(open));
        assertEq(balance, DEPOSIT, "deposit without payerAuthorizer");
    }

    function testFuzz_withdrawDelayBounds(uint40 delay) public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.withdrawDelay = delay;
        bytes memory data = erc3009Data(alicePk, c, DEPOSIT);
        if (delay < 900 || delay > 2_592_000) {
            vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.WithdrawDelayOutOfRange.selector));
        }
        batch.deposit(c, DEPOSIT, ERC3009_COLLECTOR_ADDRESS, data);
    }

    function test_depositRejectsZeroAmountAndCollector() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes memory data = erc3009Data(alicePk, c, DEPOSIT);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.ZeroDeposit.selector));
        batch.deposit(c, 0, ERC3009_COLLECTOR_ADDRESS, data);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidCollector.selector));
        batch.deposit(c, DEPOSIT, address(0), data);
    }

    function test_depositRejectsBalanceOverflow() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        mintUsdc(alice, type(uint128).max);
        batch.deposit(c, type(uint128).max, ERC3009_COLLECTOR_ADDRESS, erc3009Data(alicePk, c, type(uint128).max));
        bytes memory data = erc3009Data(alicePk, c, 1);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.DepositOverflow.selector));
        batch.deposit(c, 1, ERC3009_COLLECTOR_ADDRESS, data);
    }

    function test_depositRequiresTheExactAmountToArrive() public {
        ShortCollector short = new ShortCollector();
        vm.prank(alice);
        usdc.approve(address(short), type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.DepositCollectionFailed.selector));
        batch.deposit(defaultConfig(), DEPOSIT, address(short), "");
    }

    function test_mutatingCallsAreNotReentrant() public {
        ReentrantCollector evil = new ReentrantCollector();
        vm.expectRevert(abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector));
        batch.deposit(defaultConfig(), DEPOSIT, address(evil), "");
    }

    // ---------------------------------------------------------------- claim

    function test_claimByReceiverOrAuthorizerThenSettle() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        depositErc3009(c, DEPOSIT);

        vm.expectEmit(true, true, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.Claimed(id, bob, 2_000, 2_000);
        vm.prank(bob);
        batch.claim(one(voucherRow(c, payerAuthPk, 2_000, 2_000)));

        vm.expectEmit(true, true, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.Claimed(id, receiverAuth, 400, 2_400);
        vm.prank(receiverAuth);
        batch.claim(one(voucherRow(c, payerAuthPk, 3_000, 2_400)));

        (, uint128 claimed) = channelState(id);
        assertEq(claimed, 2_400, "channel claimed");
        (uint128 receiverClaimed, uint128 settled) = batch.receivers(bob, BASE_USDC);
        assertEq(receiverClaimed, 2_400, "receiver claimed");
        assertEq(settled, 0, "nothing settled yet");

        vm.expectEmit(true, true, true, true, BATCH_ADDRESS);
        emit x402BatchSettlement.Settled(bob, BASE_USDC, relayer, 2_400);
        vm.prank(relayer);
        batch.settle(bob, BASE_USDC);
        assertEq(usdc.balanceOf(bob), 2_400, "receiver paid");
        assertEq(usdc.balanceOf(BATCH_ADDRESS), DEPOSIT - 2_400, "escrow");

        // Nothing owed: no transfer, no event.
        vm.recordLogs();
        batch.settle(bob, BASE_USDC);
        assertEq(vm.getRecordedLogs().length, 0, "idle settle logs nothing");
    }

    function test_claimRefusesOutsiders() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        depositErc3009(c, DEPOSIT);
        x402BatchSettlement.VoucherClaim[] memory rows = one(voucherRow(c, payerAuthPk, 100, 100));
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.NotAuthorizedToClaim.selector));
        vm.prank(alice);
        batch.claim(rows);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.EmptyBatch.selector));
        vm.prank(bob);
        batch.claim(new x402BatchSettlement.VoucherClaim[](0));
    }

    function test_claimWithSignatureIsRelayable() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        depositErc3009(c, DEPOSIT);
        x402BatchSettlement.VoucherClaim[] memory rows = one(voucherRow(c, payerAuthPk, 2_000, 2_000));
        vm.prank(relayer);
        batch.claimWithSignature(rows, signClaims(rows));
        (, uint128 claimed) = channelState(channelIdOf(c));
        assertEq(claimed, 2_000, "claimed by relay");
    }

    function test_claimWithSignatureChecksTheAuthorizer() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        depositErc3009(c, DEPOSIT);
        x402BatchSettlement.VoucherClaim[] memory rows = one(voucherRow(c, payerAuthPk, 2_000, 2_000));

        // Signed by someone else, or over different rows.
        bytes memory wrongKey = packed(bobPk, claimBatchDigest(rows));
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidSignature.selector));
        batch.claimWithSignature(rows, wrongKey);
        bytes memory sig = signClaims(rows);
        rows[0].totalClaimed = 1_999;
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidSignature.selector));
        batch.claimWithSignature(rows, sig);

        // A second row under another authorizer cannot ride on the first row's signature.
        x402BatchSettlement.ChannelConfig memory other = defaultConfig();
        other.receiverAuthorizer = carol;
        x402BatchSettlement.VoucherClaim[] memory mixed = new x402BatchSettlement.VoucherClaim[](2);
        mixed[0] = voucherRow(c, payerAuthPk, 2_000, 2_000);
        mixed[1] = voucherRow(other, payerAuthPk, 1, 1);
        bytes memory mixedSig = signClaims(mixed);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.NotReceiverAuthorizer.selector));
        batch.claimWithSignature(mixed, mixedSig);

        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.EmptyBatch.selector));
        batch.claimWithSignature(new x402BatchSettlement.VoucherClaim[](0), "");
    }

    function test_claimRowChecks() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        depositErc3009(c, DEPOSIT);
        vm.startPrank(bob);

        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.ClaimExceedsCeiling.selector));
        batch.claim(one(voucherRow(c, payerAuthPk, 1_000, 1_001)));
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.ClaimExceedsBalance.selector));
        batch.claim(one(voucherRow(c, payerAuthPk, DEPOSIT + 1, DEPOSIT + 1)));
        // Signed by the payer, not by the delegated voucher key the channel names.
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidSignature.selector));
        batch.claim(one(voucherRow(c, alicePk, 1_000, 1_000)));

        // Malformed signatures under a payerAuthorizer fail as ECDSA does.
        x402BatchSettlement.VoucherClaim memory row = voucherRow(c, payerAuthPk, 1_000, 1_000);
        row.signature = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 2));
        batch.claim(one(row));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerAuthPk, voucherDigest(channelIdOf(c), 1_000));
        (v, r, s) = highS(v, r, s);
        row.signature = abi.encodePacked(r, s, v);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, s));
        batch.claim(one(row));

        // An applied row is skipped, unchecked, so re-sent batches do not revert.
        batch.claim(one(voucherRow(c, payerAuthPk, 1_000, 1_000)));
        x402BatchSettlement.VoucherClaim memory stale = voucherRow(c, payerAuthPk, 1_000, 900);
        stale.signature = "";
        vm.recordLogs();
        batch.claim(one(stale));
        assertEq(vm.getRecordedLogs().length, 0, "stale row is a no-op");
        vm.stopPrank();
    }

    function test_payerSignsVouchersWhenNoAuthorizer() public {
        // A smart-account payer: its vouchers are checked by ERC-1271.
        OwnedWallet wallet = new OwnedWallet(alice);
        mintUsdc(address(wallet), DEPOSIT);
        vm.prank(address(wallet));
        usdc.approve(PERMIT2_ADDRESS, type(uint256).max);
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.payer = address(wallet);
        c.payerAuthorizer = address(0);
        // Permit2 accepts the wallet's ERC-1271 answer for the deposit too.
        batch.deposit(c, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, permit2Data(alicePk, c, DEPOSIT, ""));

        vm.startPrank(bob);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidSignature.selector));
        batch.claim(one(voucherRow(c, bobPk, 700, 700)));
        batch.claim(one(voucherRow(c, alicePk, 700, 700)));
        vm.stopPrank();
        (, uint128 claimed) = channelState(channelIdOf(c));
        assertEq(claimed, 700, "claimed against ERC-1271");
    }

    // ---------------------------------------------------------------- refunds

    function test_refundWithSignatureReturnsUnclaimedEscrow() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        depositErc3009(c, DEPOSIT);
        vm.prank(bob);
        batch.claim(one(voucherRow(c, payerAuthPk, 2_400, 2_400)));

        // More than is unclaimed is capped to it.
        bytes memory sig = signRefund(id, 0, type(uint128).max);
        vm.expectEmit(true, true, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.Refunded(id, relayer, DEPOSIT - 2_400);
        vm.prank(relayer);
        batch.refundWithSignature(c, type(uint128).max, 0, sig);
        assertEq(batch.refundNonce(id), 1, "nonce advanced");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 2_400, "payer refunded");
        (uint128 balance, uint128 claimed) = channelState(id);
        assertEq(balance, 2_400, "claimed part stays for settle");
        assertEq(claimed, 2_400, "claimed");

        // Replay: the nonce moved on.
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidRefundNonce.selector));
        batch.refundWithSignature(c, type(uint128).max, 0, sig);
        bytes memory byPayer = packed(alicePk, refundDigest(id, 1, 5));
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidSignature.selector));
        batch.refundWithSignature(c, 5, 1, byPayer);
        bytes memory zero = signRefund(id, 1, 0);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.ZeroRefund.selector));
        batch.refundWithSignature(c, 0, 1, zero);

        // Nothing left to return: the nonce still advances, nothing is logged.
        bytes memory empty = signRefund(id, 1, 5);
        vm.recordLogs();
        batch.refundWithSignature(c, 5, 1, empty);
        assertEq(vm.getRecordedLogs().length, 0, "empty refund logs nothing");
        assertEq(batch.refundNonce(id), 2, "nonce advanced on an empty refund");
    }

    function test_directRefundByReceiverSideOnly() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        depositErc3009(c, DEPOSIT);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.NotAuthorizedToRefund.selector));
        vm.prank(alice);
        batch.refund(c, 1);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.ZeroRefund.selector));
        vm.prank(bob);
        batch.refund(c, 0);
        assertEq(batch.refundNonce(id), 0, "a rejected refund keeps the nonce");

        vm.prank(bob);
        batch.refund(c, 1_000);
        // The whole rest closes the channel (nothing was ever claimed).
        vm.expectEmit(true, false, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.ChannelClosed(id, c);
        vm.prank(receiverAuth);
        batch.refund(c, DEPOSIT);
        (uint128 balance,) = channelState(id);
        assertEq(balance, 0, "emptied");
        assertEq(batch.refundNonce(id), 2, "direct refunds advance the nonce");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS, "payer whole again");
    }

    function test_multicallClaimsAndRefundsInOneTransaction() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        depositErc3009(c, DEPOSIT);
        x402BatchSettlement.VoucherClaim[] memory rows = one(voucherRow(c, payerAuthPk, 2_400, 2_400));
        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(batch.claimWithSignature, (rows, signClaims(rows)));
        calls[1] =
            abi.encodeCall(batch.refundWithSignature, (c, DEPOSIT - 2_400, 0, signRefund(id, 0, DEPOSIT - 2_400)));
        vm.prank(relayer);
        batch.multicall(calls);
        (uint128 balance, uint128 claimed) = channelState(id);
        assertEq(balance, 2_400, "balance");
        assertEq(claimed, 2_400, "claimed");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 2_400, "refund paid");
    }

    // ---------------------------------------------------------------- timed withdrawal

    function test_withdrawalWaitsForTheDelay() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        depositErc3009(c, DEPOSIT);

        vm.expectEmit(true, false, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.WithdrawInitiated(id, 6_000, uint40(block.timestamp + 900));
        vm.prank(alice);
        batch.initiateWithdraw(c, 6_000);
        (uint128 pending, uint40 initiatedAt) = batch.pendingWithdrawals(id);
        assertEq(pending, 6_000, "pending amount");
        assertEq(initiatedAt, block.timestamp, "initiated at");

        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.WithdrawalAlreadyPending.selector));
        vm.prank(payerAuth);
        batch.initiateWithdraw(c, 1);

        vm.warp(block.timestamp + 899);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.WithdrawDelayNotElapsed.selector));
        vm.prank(alice);
        batch.finalizeWithdraw(c);

        // The receiver claims inside the window; its claim comes first.
        vm.prank(bob);
        batch.claim(one(voucherRow(c, payerAuthPk, 5_000, 5_000)));

        vm.warp(block.timestamp + 1);
        vm.expectEmit(true, true, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.WithdrawFinalized(id, payerAuth, 5_000);
        vm.prank(payerAuth);
        batch.finalizeWithdraw(c);
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 5_000, "payer got what was unclaimed");
        (uint128 balance,) = channelState(id);
        assertEq(balance, 5_000, "claimed part stays");
        (, initiatedAt) = batch.pendingWithdrawals(id);
        assertEq(initiatedAt, 0, "no longer pending");

        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.WithdrawalNotPending.selector));
        vm.prank(alice);
        batch.finalizeWithdraw(c);
    }

    function test_withdrawalChecks() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        depositErc3009(c, DEPOSIT);
        vm.prank(bob);
        batch.claim(one(voucherRow(c, payerAuthPk, 4_000, 4_000)));

        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.InvalidChannel.selector));
        vm.prank(bob);
        batch.initiateWithdraw(c, 1);
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.NothingToWithdraw.selector));
        batch.initiateWithdraw(c, 0);
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.WithdrawAmountExceedsAvailable.selector));
        batch.initiateWithdraw(c, DEPOSIT - 4_000 + 1);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(x402BatchSettlement.NotAuthorizedToFinalizeWithdraw.selector));
        vm.prank(bob);
        batch.finalizeWithdraw(c);
    }

    function test_refundShrinksOrEndsAPendingWithdrawal() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        depositErc3009(c, DEPOSIT);
        vm.prank(alice);
        batch.initiateWithdraw(c, 6_000);
        vm.prank(bob);
        batch.refund(c, 1_000);
        (uint128 pending, uint40 initiatedAt) = batch.pendingWithdrawals(id);
        assertEq(pending, 5_000, "reduced by the refund");
        assertTrue(initiatedAt != 0, "still pending");
        vm.prank(bob);
        batch.refund(c, 5_000);
        (pending, initiatedAt) = batch.pendingWithdrawals(id);
        assertEq(pending, 0, "cleared");
        assertEq(initiatedAt, 0, "not pending");
    }

    // ---------------------------------------------------------------- accounting under fuzzing

    /// @dev Any deposit, claim, refund and withdrawal sequence conserves tokens: what left the payer is in
    /// escrow, with the receiver, or back with the payer, and escrow always covers what is owed.
    function testFuzz_accountingConserves(uint128 deposit, uint128 claimAmount, uint128 refundAmount, uint128 withdraw)
        public
    {
        deposit = uint128(bound(deposit, 1, ALICE_FUNDS));
        claimAmount = uint128(bound(claimAmount, 0, deposit));
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        depositErc3009(c, deposit);

        if (claimAmount != 0) {
            vm.prank(receiverAuth);
            batch.claim(one(voucherRow(c, payerAuthPk, claimAmount, claimAmount)));
        }
        withdraw = uint128(bound(withdraw, 0, deposit - claimAmount));
        if (withdraw != 0) {
            vm.prank(alice);
            batch.initiateWithdraw(c, withdraw);
        }
        refundAmount = uint128(bound(refundAmount, 1, type(uint128).max));
        vm.prank(bob);
        batch.refund(c, refundAmount);
        uint256 refunded = refundAmount < deposit - claimAmount ? refundAmount : deposit - claimAmount;

        vm.warp(block.timestamp + 900);
        if (withdraw != 0 && refunded < withdraw) {
            vm.prank(alice);
            batch.finalizeWithdraw(c);
        }
        batch.settle(bob, BASE_USDC);

        (uint128 balance, uint128 claimed) = channelState(id);
        assertEq(claimed, claimAmount, "claimed");
        assertEq(usdc.balanceOf(bob), claimAmount, "receiver got every claimed unit");
        assertEq(usdc.balanceOf(BATCH_ADDRESS), balance - claimed, "escrow holds exactly the unsettled balance");
        assertEq(usdc.balanceOf(alice) + usdc.balanceOf(bob) + usdc.balanceOf(BATCH_ADDRESS), ALICE_FUNDS, "conserved");
        assertTrue(balance >= claimed, "escrow covers claims");
    }

    /// @dev Cumulative claims: replaying any earlier total moves nothing; only the increase is ever credited.
    function testFuzz_claimsAreCumulative(uint128 first, uint128 second) public {
        first = uint128(bound(first, 1, DEPOSIT));
        second = uint128(bound(second, 1, DEPOSIT));
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        depositErc3009(c, DEPOSIT);
        vm.startPrank(bob);
        batch.claim(one(voucherRow(c, payerAuthPk, DEPOSIT, first)));
        batch.claim(one(voucherRow(c, payerAuthPk, DEPOSIT, second)));
        batch.claim(one(voucherRow(c, payerAuthPk, DEPOSIT, first)));
        vm.stopPrank();
        uint128 top = first > second ? first : second;
        (, uint128 claimed) = channelState(channelIdOf(c));
        assertEq(claimed, top, "channel holds the highest total");
        (uint128 receiverClaimed,) = batch.receivers(bob, BASE_USDC);
        assertEq(receiverClaimed, top, "receiver credited once");
    }
}
