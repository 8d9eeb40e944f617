// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {USDCFixture} from "./utils/USDCFixture.sol";
import {OwnedWallet} from "./utils/Wallets.sol";

contract MockUSDCPermitTest is USDCFixture {
    function permitDigest(address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return
            typedDigest(address(usdc), keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonce, deadline)));
    }

    function test_permit_vrs_setsAllowanceAndBumpsNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, permitDigest(alice, carol, 7e6, 0, deadline));

        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Approval(alice, carol, 7e6);
        vm.prank(relayer);
        usdc.permit(alice, carol, 7e6, deadline, v, r, s);

        assertEq(usdc.allowance(alice, carol), 7e6, "allowance");
        assertEq(usdc.nonces(alice), 1, "nonce bumped");
        assertEq(usdc.nonces(carol), 0, "spender nonce untouched");

        vm.prank(carol);
        assertTrue(usdc.transferFrom(alice, bob, 7e6), "transferFrom returns true");
        assertEq(usdc.balanceOf(bob), 7e6, "spent through permit");
        assertEq(usdc.allowance(alice, carol), 0, "allowance consumed");
    }

    function test_permit_bytes_setsAllowanceAndBumpsNonce() public {
        uint256 deadline = block.timestamp;
        bytes memory sig = packed(alicePk, permitDigest(alice, carol, 3e6, 0, deadline));
        usdc.permit(alice, carol, 3e6, deadline, sig);
        assertEq(usdc.allowance(alice, carol), 3e6, "allowance");
        assertEq(usdc.nonces(alice), 1, "nonce bumped");

        // The next permit must sign the next nonce.
        sig = packed(alicePk, permitDigest(alice, carol, 0, 1, type(uint256).max));
        usdc.permit(alice, carol, 0, type(uint256).max, sig);
        assertEq(usdc.allowance(alice, carol), 0, "revoked");
        assertEq(usdc.nonces(alice), 2, "second nonce");
    }

    function test_permit_maxDeadlineNeverExpires() public {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, permitDigest(alice, carol, 1, 0, type(uint256).max));
        vm.warp(type(uint64).max);
        usdc.permit(alice, carol, 1, type(uint256).max, v, r, s);
        assertEq(usdc.allowance(alice, carol), 1, "allowance");
    }

    function test_permit_expired_reverts() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, permitDigest(alice, carol, 1, 0, deadline));
        vm.expectRevert(bytes("FiatTokenV2: permit is expired"));
        usdc.permit(alice, carol, 1, deadline, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: permit is expired"));
        usdc.permit(alice, carol, 1, deadline, abi.encodePacked(r, s, v));
        assertEq(usdc.nonces(alice), 0, "nonce untouched");
    }

    function test_permit_replay_reverts() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, permitDigest(alice, carol, 1, 0, deadline));
        usdc.permit(alice, carol, 1, deadline, v, r, s);
        // The nonce moved on, so the old signature no longer matches the digest.
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        usdc.permit(alice, carol, 1, deadline, v, r, s);
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        usdc.permit(alice, carol, 1, deadline, abi.encodePacked(r, s, v));
        assertEq(usdc.nonces(alice), 1, "one nonce spent");
    }

    function test_permit_wrongSignerOrTampered_reverts() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(bobPk, permitDigest(alice, carol, 1, 0, deadline));
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        usdc.permit(alice, carol, 1, deadline, v, r, s);
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        usdc.permit(alice, carol, 1, deadline, abi.encodePacked(r, s, v));

        (v, r, s) = vm.sign(alicePk, permitDigest(alice, carol, 1, 0, deadline));
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        usdc.permit(alice, carol, 2, deadline, v, r, s);
        (v, r, s) = highS(v, r, s);
        vm.expectRevert(bytes("EIP2612: invalid signature"));
        usdc.permit(alice, carol, 1, deadline, v, r, s);
        assertEq(usdc.nonces(alice), 0, "failed permits spend no nonce");
    }

    function test_permit_contractWallet() public {
        OwnedWallet wallet = new OwnedWallet(bob);
        uint256 deadline = block.timestamp + 1;
        bytes memory sig = packed(bobPk, permitDigest(address(wallet), carol, 9, 0, deadline));
        usdc.permit(address(wallet), carol, 9, deadline, sig);
        assertEq(usdc.allowance(address(wallet), carol), 9, "bytes overload");

        (uint8 v, bytes32 r, bytes32 s) = vm.sign(bobPk, permitDigest(address(wallet), carol, 10, 1, deadline));
        usdc.permit(address(wallet), carol, 10, deadline, v, r, s);
        assertEq(usdc.allowance(address(wallet), carol), 10, "vrs overload");
    }

    function test_permit_pausedOrBlacklisted_reverts() public {
        uint256 deadline = block.timestamp + 1;
        bytes memory sig = packed(alicePk, permitDigest(alice, carol, 1, 0, deadline));

        vm.prank(admin);
        usdc.pause();
        vm.expectRevert(bytes("Pausable: paused"));
        usdc.permit(alice, carol, 1, deadline, sig);

        vm.startPrank(admin);
        usdc.unpause();
        usdc.blacklist(carol);
        vm.stopPrank();
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.permit(alice, carol, 1, deadline, sig);

        vm.startPrank(admin);
        usdc.unBlacklist(carol);
        usdc.blacklist(alice);
        vm.stopPrank();
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.permit(alice, carol, 1, deadline, sig);
    }

    function test_permit_toZeroSpender_reverts() public {
        uint256 deadline = block.timestamp + 1;
        bytes memory sig = packed(alicePk, permitDigest(alice, address(0), 1, 0, deadline));
        vm.expectRevert(bytes("ERC20: approve to the zero address"));
        usdc.permit(alice, address(0), 1, deadline, sig);
    }

    function testFuzz_permit_deadline(uint256 deadline, uint256 now_) public {
        now_ = bound(now_, 1, type(uint64).max);
        deadline = bound(deadline, 0, type(uint64).max);
        vm.warp(now_);
        bytes memory sig = packed(alicePk, permitDigest(alice, carol, 5, 0, deadline));
        if (deadline < now_) vm.expectRevert(bytes("FiatTokenV2: permit is expired"));
        usdc.permit(alice, carol, 5, deadline, sig);
        assertEq(usdc.allowance(alice, carol), deadline < now_ ? 0 : 5, "allowance");
    }
}
