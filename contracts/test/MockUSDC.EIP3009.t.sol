// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MockUSDC} from "../src/MockUSDC.sol";
import {USDCFixture} from "./utils/USDCFixture.sol";
import {OwnedWallet, RejectingWallet, RevertingWallet} from "./utils/Wallets.sol";

contract MockUSDCEIP3009Test is USDCFixture {
    // ------------------------------------------------------------ transferWithAuthorization

    function test_transferWithAuthorization_vrs_movesFundsAndEmits() public {
        Auth memory a = newAuth(alice, bob, 12e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        // The facilitator finds the payment by these two logs, in this order.
        vm.expectEmit(true, true, false, true, address(usdc));
        emit MockUSDC.AuthorizationUsed(alice, a.nonce);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(alice, bob, 12e6);
        vm.prank(relayer);
        transferVRS(a, v, r, s);

        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 12e6, "alice");
        assertEq(usdc.balanceOf(bob), 12e6, "bob");
        assertEq(usdc.balanceOf(relayer), 0, "relayer untouched");
        assertTrue(usdc.authorizationState(alice, a.nonce), "nonce used");
    }

    function test_transferWithAuthorization_bytes_movesFundsAndEmits() public {
        Auth memory a = newAuth(alice, bob, 5e6);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        assertFalse(usdc.authorizationState(alice, a.nonce), "fresh nonce");

        vm.expectEmit(true, true, false, true, address(usdc));
        emit MockUSDC.AuthorizationUsed(alice, a.nonce);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(alice, bob, 5e6);
        vm.prank(relayer);
        transferBytes(a, sig);

        assertEq(usdc.balanceOf(bob), 5e6, "bob");
        assertTrue(usdc.authorizationState(alice, a.nonce), "nonce used");
    }

    function test_transferWithAuthorization_zeroValueStillConsumesNonce() public {
        Auth memory a = newAuth(alice, bob, 0);
        transferBytes(a, packed(alicePk, authDigest(TRANSFER_TYPEHASH, a)));
        assertTrue(usdc.authorizationState(alice, a.nonce), "nonce used");
    }

    function test_transferWithAuthorization_replay_reverts() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        transferVRS(a, v, r, s);

        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        transferVRS(a, v, r, s);
        // Switching overload is no way around the nonce.
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        transferBytes(a, abi.encodePacked(r, s, v));
        assertEq(usdc.balanceOf(bob), 1e6, "paid once");
    }

    function test_transferWithAuthorization_wrongSigner_reverts() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        bytes32 digest = authDigest(TRANSFER_TYPEHASH, a);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(bobPk, digest);
        bytes memory sig = packed(bobPk, digest);

        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, sig);
        assertFalse(usdc.authorizationState(alice, a.nonce), "nonce untouched");
    }

    function test_transferWithAuthorization_tamperedFields_revert() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        a.value = 2e6;
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, r, s);
        a.value = 1e6;

        a.to = carol;
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, r, s);
        a.to = bob;

        a.validBefore += 1;
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, r, s);
        a.validBefore -= 1;

        a.nonce = bytes32(uint256(a.nonce) ^ 1);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, r, s);
    }

    function test_transferWithAuthorization_highS_rejected() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        (uint8 v2, bytes32 r2, bytes32 s2) = highS(v, r, s);
        // Sanity: the twin really is a valid signature to the bare precompile.
        assertEq(ecrecover(authDigest(TRANSFER_TYPEHASH, a), v2, r2, s2), alice, "malleable twin recovers");

        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v2, r2, s2);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, abi.encodePacked(r2, s2, v2));

        transferVRS(a, v, r, s);
        assertEq(usdc.balanceOf(bob), 1e6, "low-s still pays");
    }

    function test_transferWithAuthorization_malformedSignatures_rejected() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v + 2, r, s);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, bytes32(0), s);
        // ERC-2098 compact (64-byte) signatures are not accepted by FiatToken either.
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, abi.encodePacked(r, s));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, "");
    }

    function test_transferWithAuthorization_receiveSignatureNotAccepted() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        // The typehash is part of what is signed: a receive authorization is not a transfer one.
        bytes memory sig = packed(alicePk, authDigest(RECEIVE_TYPEHASH, a));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, sig);
    }

    function test_transferWithAuthorization_toZero_reverts() public {
        Auth memory a = newAuth(alice, address(0), 1e6);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        transferBytes(a, sig);
    }

    function test_transferWithAuthorization_fromZero_isInvalidSignature() public {
        Auth memory a = newAuth(address(0), bob, 0);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, sig);
    }

    function test_transferWithAuthorization_signatureCheckedBeforeBalance() public {
        // FiatToken order: a forged authorization for more than the balance is a signature failure.
        Auth memory a = newAuth(alice, bob, ALICE_FUNDS + 1);
        bytes memory sig = packed(bobPk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, sig);
    }

    function test_transferWithAuthorization_toTokenItself_blocked() public {
        Auth memory a = newAuth(alice, address(usdc), 1e6);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        transferBytes(a, sig);
    }

    // ------------------------------------------------------------ windows and amounts (fuzzed)

    function testFuzz_transferWithAuthorization_window(uint256 validAfter, uint256 validBefore, uint256 now_) public {
        now_ = bound(now_, 1, type(uint64).max);
        // Keep the bounds near `now_` so all three outcomes get hit often, including the exact edges.
        validAfter = bound(validAfter, now_ > 3 ? now_ - 3 : 0, now_ + 3);
        validBefore = bound(validBefore, now_ > 3 ? now_ - 3 : 0, now_ + 3);
        vm.warp(now_);
        Auth memory a = Auth(alice, bob, 1e6, validAfter, validBefore, keccak256(abi.encode(now_, validAfter)));
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        if (now_ <= validAfter) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        } else if (now_ >= validBefore) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        }
        transferBytes(a, sig);
        bool paid = now_ > validAfter && now_ < validBefore;
        assertEq(usdc.balanceOf(bob), paid ? 1e6 : 0, "bob");
        assertEq(usdc.authorizationState(alice, a.nonce), paid, "nonce state");
    }

    function testFuzz_receiveWithAuthorization_window(uint256 validAfter, uint256 validBefore, uint256 now_) public {
        now_ = bound(now_, 1, type(uint64).max);
        validAfter = bound(validAfter, 0, type(uint64).max);
        validBefore = bound(validBefore, 0, type(uint64).max);
        vm.warp(now_);
        Auth memory a = Auth(alice, bob, 1e6, validAfter, validBefore, bytes32(now_));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(RECEIVE_TYPEHASH, a));

        if (now_ <= validAfter) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        } else if (now_ >= validBefore) {
            vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        }
        vm.prank(bob);
        receiveVRS(a, v, r, s);
    }

    function testFuzz_transferWithAuthorization_valueAgainstBalance(uint256 value, bytes32 nonce) public {
        value = bound(value, 0, ALICE_FUNDS * 2);
        Auth memory a = newAuth(alice, bob, value);
        a.nonce = nonce;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        if (value > ALICE_FUNDS) vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        transferVRS(a, v, r, s);

        bool paid = value <= ALICE_FUNDS;
        assertEq(usdc.balanceOf(bob), paid ? value : 0, "bob");
        assertEq(usdc.balanceOf(alice), paid ? ALICE_FUNDS - value : ALICE_FUNDS, "alice");
        // A reverted settlement must leave the authorization usable for a later retry.
        assertEq(usdc.authorizationState(alice, nonce), paid, "nonce state");
        assertEq(usdc.totalSupply(), ALICE_FUNDS, "supply conserved");
    }

    function testFuzz_transferWithAuthorization_anySignerKey(uint256 pk, uint256 value) public {
        pk = bound(pk, 1, SECP256K1_N - 1);
        address payer = vm.addr(pk);
        vm.assume(payer != bob && payer != alice && payer.code.length == 0);
        value = bound(value, 1, 1e12);
        vm.prank(admin);
        usdc.mint(payer, value);

        Auth memory a = newAuth(payer, bob, value);
        transferBytes(a, packed(pk, authDigest(TRANSFER_TYPEHASH, a)));
        assertEq(usdc.balanceOf(bob), value, "bob");
        assertEq(usdc.balanceOf(payer), 0, "payer drained");
    }

    // ------------------------------------------------------------ receiveWithAuthorization

    function test_receiveWithAuthorization_vrs_payeeCollects() public {
        Auth memory a = newAuth(alice, bob, 3e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(RECEIVE_TYPEHASH, a));

        vm.expectEmit(true, true, false, true, address(usdc));
        emit MockUSDC.AuthorizationUsed(alice, a.nonce);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(alice, bob, 3e6);
        vm.prank(bob);
        receiveVRS(a, v, r, s);

        assertEq(usdc.balanceOf(bob), 3e6, "bob");
        assertTrue(usdc.authorizationState(alice, a.nonce), "nonce used");
    }

    function test_receiveWithAuthorization_bytes_payeeCollects() public {
        Auth memory a = newAuth(alice, bob, 3e6);
        bytes memory sig = packed(alicePk, authDigest(RECEIVE_TYPEHASH, a));
        vm.prank(bob);
        receiveBytes(a, sig);
        assertEq(usdc.balanceOf(bob), 3e6, "bob");
    }

    function test_receiveWithAuthorization_callerNotPayee_reverts() public {
        Auth memory a = newAuth(alice, bob, 3e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(RECEIVE_TYPEHASH, a));

        vm.prank(relayer);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        receiveVRS(a, v, r, s);
        vm.prank(alice);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        receiveBytes(a, abi.encodePacked(r, s, v));
        assertFalse(usdc.authorizationState(alice, a.nonce), "nonce untouched");
    }

    function test_receiveWithAuthorization_transferSignatureNotAccepted() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.prank(bob);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        receiveVRS(a, v, r, s);
    }

    function test_receiveWithAuthorization_replay_reverts() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        bytes memory sig = packed(alicePk, authDigest(RECEIVE_TYPEHASH, a));
        vm.prank(bob);
        receiveBytes(a, sig);
        vm.prank(bob);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        receiveBytes(a, sig);
    }

    function test_receiveWithAuthorization_highS_rejected() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(RECEIVE_TYPEHASH, a));
        (v, r, s) = highS(v, r, s);
        vm.prank(bob);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        receiveVRS(a, v, r, s);
    }

    // ------------------------------------------------------------ cancelAuthorization

    function test_cancelAuthorization_vrs_thenUse_reverts() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 cv, bytes32 cr, bytes32 cs) = vm.sign(alicePk, cancelDigest(alice, a.nonce));

        vm.expectEmit(true, true, false, true, address(usdc));
        emit MockUSDC.AuthorizationCanceled(alice, a.nonce);
        vm.prank(relayer);
        usdc.cancelAuthorization(alice, a.nonce, cv, cr, cs);
        assertTrue(usdc.authorizationState(alice, a.nonce), "canceled reads as used");

        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        transferBytes(a, sig);
        bytes memory rsig = packed(alicePk, authDigest(RECEIVE_TYPEHASH, a));
        vm.prank(bob);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        receiveBytes(a, rsig);
    }

    function test_cancelAuthorization_bytes_thenUse_reverts() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        bytes memory csig = packed(alicePk, cancelDigest(alice, a.nonce));
        vm.expectEmit(true, true, false, true, address(usdc));
        emit MockUSDC.AuthorizationCanceled(alice, a.nonce);
        usdc.cancelAuthorization(alice, a.nonce, csig);

        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        transferVRS(a, v, r, s);
    }

    function test_cancelAuthorization_afterUse_reverts() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        transferBytes(a, packed(alicePk, authDigest(TRANSFER_TYPEHASH, a)));

        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, cancelDigest(alice, a.nonce));
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.cancelAuthorization(alice, a.nonce, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.cancelAuthorization(alice, a.nonce, abi.encodePacked(r, s, v));
    }

    function test_cancelAuthorization_twice_reverts() public {
        bytes32 nonce = keccak256("twice");
        bytes memory csig = packed(alicePk, cancelDigest(alice, nonce));
        usdc.cancelAuthorization(alice, nonce, csig);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.cancelAuthorization(alice, nonce, csig);
    }

    function test_cancelAuthorization_wrongSignerOrHighS_reverts() public {
        bytes32 nonce = keccak256("cancel");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(bobPk, cancelDigest(alice, nonce));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.cancelAuthorization(alice, nonce, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.cancelAuthorization(alice, nonce, abi.encodePacked(r, s, v));

        (v, r, s) = vm.sign(alicePk, cancelDigest(alice, nonce));
        (v, r, s) = highS(v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.cancelAuthorization(alice, nonce, v, r, s);
        assertFalse(usdc.authorizationState(alice, nonce), "still open");
    }

    function test_authorizationState_isPerAuthorizer() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        transferBytes(a, packed(alicePk, authDigest(TRANSFER_TYPEHASH, a)));
        assertTrue(usdc.authorizationState(alice, a.nonce), "alice's nonce");
        assertFalse(usdc.authorizationState(bob, a.nonce), "same nonce, other authorizer");
    }

    // ------------------------------------------------------------ pause and blacklist

    function test_paused_blocksAuthorizations() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        bytes memory rsig = packed(alicePk, authDigest(RECEIVE_TYPEHASH, a));
        bytes memory csig = packed(alicePk, cancelDigest(alice, a.nonce));
        vm.prank(admin);
        usdc.pause();

        vm.expectRevert(bytes("Pausable: paused"));
        transferVRS(a, v, r, s);
        vm.expectRevert(bytes("Pausable: paused"));
        transferBytes(a, abi.encodePacked(r, s, v));
        vm.prank(bob);
        vm.expectRevert(bytes("Pausable: paused"));
        receiveBytes(a, rsig);
        vm.expectRevert(bytes("Pausable: paused"));
        usdc.cancelAuthorization(alice, a.nonce, csig);

        vm.prank(admin);
        usdc.unpause();
        transferVRS(a, v, r, s);
        assertEq(usdc.balanceOf(bob), 1e6, "works after unpause");
    }

    function test_blacklist_blocksAuthorizationParties() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        vm.prank(admin);
        usdc.blacklist(alice);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        transferBytes(a, sig);

        vm.startPrank(admin);
        usdc.unBlacklist(alice);
        usdc.blacklist(bob);
        vm.stopPrank();
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        transferBytes(a, sig);

        // The submitter is not a party: a blacklisted relayer may still settle, as on USDC.
        vm.startPrank(admin);
        usdc.unBlacklist(bob);
        usdc.blacklist(relayer);
        vm.stopPrank();
        vm.prank(relayer);
        transferBytes(a, sig);
        assertEq(usdc.balanceOf(bob), 1e6, "settled");
    }

    // ------------------------------------------------------------ ERC-1271 payers

    function test_contractWallet_paysThroughBytesOverload() public {
        OwnedWallet wallet = new OwnedWallet(bob);
        vm.prank(admin);
        usdc.mint(address(wallet), 10e6);

        Auth memory a = newAuth(address(wallet), carol, 4e6);
        bytes memory sig = packed(bobPk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectEmit(true, true, false, true, address(usdc));
        emit MockUSDC.AuthorizationUsed(address(wallet), a.nonce);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(address(wallet), carol, 4e6);
        transferBytes(a, sig);
        assertEq(usdc.balanceOf(carol), 4e6, "carol");

        Auth memory b = newAuth(address(wallet), carol, 1e6);
        bytes memory rsig = packed(bobPk, authDigest(RECEIVE_TYPEHASH, b));
        vm.prank(carol);
        receiveBytes(b, rsig);
        assertEq(usdc.balanceOf(carol), 5e6, "carol after receive");
    }

    function test_contractWallet_paysThroughVRSOverload() public {
        OwnedWallet wallet = new OwnedWallet(bob);
        vm.prank(admin);
        usdc.mint(address(wallet), 10e6);

        Auth memory a = newAuth(address(wallet), carol, 4e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(bobPk, authDigest(TRANSFER_TYPEHASH, a));
        transferVRS(a, v, r, s);
        assertEq(usdc.balanceOf(carol), 4e6, "carol");

        Auth memory b = newAuth(address(wallet), carol, 1e6);
        (v, r, s) = vm.sign(bobPk, authDigest(RECEIVE_TYPEHASH, b));
        vm.prank(carol);
        receiveVRS(b, v, r, s);
        assertEq(usdc.balanceOf(carol), 5e6, "carol after receive");
    }

    function test_contractWallet_canCancel() public {
        OwnedWallet wallet = new OwnedWallet(bob);
        bytes32 nonce = keccak256("wallet-cancel");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(bobPk, cancelDigest(address(wallet), nonce));
        usdc.cancelAuthorization(address(wallet), nonce, v, r, s);
        assertTrue(usdc.authorizationState(address(wallet), nonce), "canceled");
    }

    function test_contractWallet_wrongOwnerKey_reverts() public {
        OwnedWallet wallet = new OwnedWallet(bob);
        vm.prank(admin);
        usdc.mint(address(wallet), 10e6);
        Auth memory a = newAuth(address(wallet), carol, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, abi.encodePacked(r, s, v));
    }

    function test_rejectingWallets_revertAsInvalidSignature() public {
        address rejecting = address(new RejectingWallet());
        address reverting = address(new RevertingWallet());
        vm.startPrank(admin);
        usdc.mint(rejecting, 1e6);
        usdc.mint(reverting, 1e6);
        vm.stopPrank();

        Auth memory a = newAuth(rejecting, carol, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferVRS(a, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, abi.encodePacked(r, s, v));

        Auth memory b = newAuth(reverting, carol, 1e6);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, b));
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(b, sig);
    }
}

/// @dev Settlement benchmarks run on this path, so a regression in its gas is a regression in the product.
contract MockUSDCGasTest is USDCFixture {
    // Cold everything, fresh recipient and fresh nonce: the common x402 settlement, measured at about
    // 72k of execution (no 21k intrinsic, no calldata). Real USDC v2.2 on Base costs about the same:
    // it pays a proxy hop (~5k) but keeps the blacklist flag inside the balance slot (~4k saved).
    uint256 internal constant BUDGET = 75_000;

    function test_gas_transferWithAuthorization_vrs() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        uint256 before = gasleft();
        transferVRS(a, v, r, s);
        uint256 used = before - gasleft();
        assertTrue(used < BUDGET, string.concat("vrs settlement gas ", vm.toString(used)));
    }

    function test_gas_transferWithAuthorization_bytes() public {
        Auth memory a = newAuth(alice, bob, 1e6);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        uint256 before = gasleft();
        transferBytes(a, sig);
        uint256 used = before - gasleft();
        assertTrue(used < BUDGET, string.concat("bytes settlement gas ", vm.toString(used)));
    }
}
