// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ISignatureTransfer, Permit2} from "../../src/Permit2.sol";
import {x402BasePermit2Proxy as BaseProxy} from "../../src/x402BasePermit2Proxy.sol";
import {PermitBehaviourToken, ReentrantWallet} from "./Permit2Doubles.sol";
import {Permit2Fixture} from "./Permit2Fixture.sol";
import {Vm} from "./Vm.sol";
import {OwnedWallet} from "./Wallets.sol";

/// @dev What every x402 Permit2 proxy must do alike, run once per proxy through the hooks at the top. The
/// witness carries each field either proxy binds; `facilitator` also submits the call, since the upto proxy
/// lets only that address settle (the exact proxy ignores it). Amounts are the signed maximum; `metered` says
/// what the proxy moves of it, so the upto proxy is exercised below its ceiling.
abstract contract Permit2ProxySuite is Permit2Fixture {
    /// @dev OZ v5 ReentrancyGuard's ERC-7201 slot: holds 0 when placed, 1 after the first call, 2 while inside.
    bytes32 internal constant GUARD_SLOT = 0x9b779b17422d0df92223018b32b4d1fa46e071723d6817e2486d003becc55f00;

    struct PaymentWitness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    function proxyAddress() internal pure virtual returns (address);

    /// @dev `file:contract` for vm.getDeployedCode.
    function proxyArtifact() internal pure virtual returns (string memory);

    function proxyRuntimeCode() internal pure virtual returns (bytes memory);

    function metered(uint256 maximum) internal pure virtual returns (uint256);

    function witnessDigest(ISignatureTransfer.PermitTransferFrom memory p, address spender, PaymentWitness memory w)
        internal
        view
        virtual
        returns (bytes32);

    function settleCall(
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal view virtual returns (bytes memory);

    function settleWithPermitCall(
        BaseProxy.EIP2612Permit memory pp,
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal view virtual returns (bytes memory);

    function setUp() public virtual override {
        super.setUp();
        vm.etch(proxyAddress(), proxyRuntimeCode());
    }

    // ------------------------------------------------------------ helpers

    /// @dev The prank and then exactly one external call, so a vm.expectRevert placed before it applies to the
    /// proxy call. Under vm.expectRevert a low-level call reports success; any other revert is bubbled.
    function submit(address caller, bytes memory data) internal {
        vm.prank(caller);
        (bool ok, bytes memory ret) = proxyAddress().call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function settle(
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal {
        submit(w.facilitator, settleCall(p, owner, w, sig));
    }

    function settleWithPermit(
        BaseProxy.EIP2612Permit memory pp,
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal {
        submit(w.facilitator, settleWithPermitCall(pp, p, owner, w, sig));
    }

    function witnessTo(address to) internal view returns (PaymentWitness memory) {
        return PaymentWitness(to, relayer, block.timestamp - 60);
    }

    function signed(uint256 pk, ISignatureTransfer.PermitTransferFrom memory p, PaymentWitness memory w)
        internal
        view
        returns (bytes memory)
    {
        return packed(pk, witnessDigest(p, proxyAddress(), w));
    }

    /// @dev The payer's EIP-2612 approval of Permit2 as the SDK's sponsoring extension signs it.
    function sign2612(uint256 pk, uint256 value, uint256 deadline)
        internal
        view
        returns (BaseProxy.EIP2612Permit memory)
    {
        address owner = vm.addr(pk);
        bytes32 digest = typedDigest(
            BASE_USDC,
            keccak256(abi.encode(PERMIT_TYPEHASH, owner, PERMIT2_ADDRESS, value, usdc.nonces(owner), deadline))
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return BaseProxy.EIP2612Permit(value, deadline, r, s, v);
    }

    /// @dev Fails every check either proxy makes, for the revert-order tests to repair one step at a time.
    function failingPayment()
        internal
        returns (ISignatureTransfer.PermitTransferFrom memory p, PaymentWitness memory w, bytes memory bad)
    {
        p = newPermit(BASE_USDC, 0);
        p.deadline = block.timestamp - 1;
        w = PaymentWitness(address(0), relayer, block.timestamp + 1);
        bad = new bytes(65);
    }

    function behaviourToken(PermitBehaviourToken.PermitMode mode) internal returns (PermitBehaviourToken token) {
        token = new PermitBehaviourToken();
        token.setPermitMode(mode);
        token.mint(alice, 10);
        vm.prank(alice);
        token.approve(PERMIT2_ADDRESS, type(uint256).max);
    }

    function settleBehaviour(PermitBehaviourToken token) internal {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(address(token), 10);
        PaymentWitness memory w = witnessTo(carol);
        BaseProxy.EIP2612Permit memory pp = BaseProxy.EIP2612Permit(10, p.deadline, bytes32(0), bytes32(0), 27);
        settleWithPermit(pp, p, alice, w, signed(alicePk, p, w));
        assertEq(token.balanceOf(carol), metered(10), "paid after the permit attempt");
    }

    // ------------------------------------------------------------ placement and views

    function test_placedFromArtifact_unsetGuardSlotWorks() public {
        bytes memory artifact = vm.getDeployedCode(proxyArtifact());
        assertEq(artifact, proxyRuntimeCode(), "artifact = runtime code (no immutables to patch)");
        vm.etch(proxyAddress(), artifact);
        assertEq(vm.load(proxyAddress(), GUARD_SLOT), bytes32(0), "no constructor ran");

        for (uint256 i = 0; i < 2; i++) {
            ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
            PaymentWitness memory w = witnessTo(carol);
            settle(p, alice, w, signed(alicePk, p, w));
        }
        assertEq(usdc.balanceOf(carol), 2 * metered(1e6), "settled twice");
        assertEq(vm.load(proxyAddress(), GUARD_SLOT), bytes32(uint256(1)), "guard released");
    }

    function test_permit2BakedIn() public view {
        assertEq(address(BaseProxy(proxyAddress()).PERMIT2()), PERMIT2_ADDRESS, "PERMIT2");
    }

    // ------------------------------------------------------------ settle

    function test_settle_paysAndEmits() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 12e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        uint256 paid = metered(12e6);

        vm.expectEmit(true, true, false, true, BASE_USDC);
        emit IERC20.Transfer(alice, carol, paid);
        vm.expectEmit(false, false, false, true, proxyAddress());
        emit BaseProxy.Settled();
        vm.recordLogs();
        settle(p, alice, w, sig);

        assertEq(vm.getRecordedLogs().length, 2, "Transfer and Settled only");
        assertEq(usdc.balanceOf(carol), paid, "carol");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - paid, "alice");
        assertEq(usdc.balanceOf(proxyAddress()), 0, "proxy holds nothing");
        assertEq(usdc.balanceOf(w.facilitator), 0, "submitter gets nothing");
        assertEq(permit2.nonceBitmap(alice, p.nonce >> 8), nonceMask(p.nonce), "Permit2 nonce spent");
    }

    function test_settle_compactSignature() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        settle(p, alice, w, compact(alicePk, witnessDigest(p, proxyAddress(), w)));
        assertEq(usdc.balanceOf(carol), metered(1e6), "paid");
    }

    function test_settle_contractOwner() public {
        OwnedWallet wallet = new OwnedWallet(bob);
        mintUsdc(address(wallet), 5e6);
        vm.prank(address(wallet));
        usdc.approve(PERMIT2_ADDRESS, type(uint256).max);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 5e6);
        PaymentWitness memory w = witnessTo(carol);
        settle(p, address(wallet), w, signed(bobPk, p, w));
        assertEq(usdc.balanceOf(carol), metered(5e6), "wallet paid");

        p = newPermit(BASE_USDC, 1);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidContractSignature.selector));
        settle(p, address(wallet), w, signed(alicePk, p, w));
    }

    /// @dev Each step leaves every later check failing too, so only the earliest may be reported.
    function test_settle_revertOrder() public {
        (ISignatureTransfer.PermitTransferFrom memory p, PaymentWitness memory w, bytes memory bad) = failingPayment();

        vm.expectRevert(abi.encodeWithSelector(BaseProxy.InvalidAmount.selector));
        settle(p, address(0), w, bad);
        p.permitted.amount = 1e6;
        vm.expectRevert(abi.encodeWithSelector(BaseProxy.InvalidOwner.selector));
        settle(p, address(0), w, bad);
        vm.expectRevert(abi.encodeWithSelector(BaseProxy.InvalidDestination.selector));
        settle(p, alice, w, bad);
        w.to = carol;
        vm.expectRevert(abi.encodeWithSelector(BaseProxy.PaymentTooEarly.selector));
        settle(p, alice, w, bad);
        w.validAfter = block.timestamp;
        // From here on Permit2's own order shows through unchanged.
        vm.expectRevert(abi.encodeWithSelector(Permit2.SignatureExpired.selector, p.deadline));
        settle(p, alice, w, bad);
        p.deadline = block.timestamp;
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignature.selector));
        settle(p, alice, w, bad);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignatureLength.selector));
        settle(p, alice, w, hex"00");
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        settle(p, alice, w, signed(bobPk, p, w));

        settle(p, alice, w, signed(alicePk, p, w));
        assertEq(usdc.balanceOf(carol), metered(1e6), "validAfter == now and deadline == now both pay");
    }

    function test_settle_replay_invalidNonce() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        settle(p, alice, w, sig);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        settle(p, alice, w, sig);
        assertEq(usdc.balanceOf(carol), metered(1e6), "paid once");
    }

    function test_settle_transferFailureSurfaces() public {
        mintUsdc(bob, 1e6);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        vm.expectRevert(bytes("TRANSFER_FROM_FAILED"));
        settle(p, bob, w, signed(bobPk, p, w));
    }

    /// @dev What a dishonest submitter could try: the witness and the spender pin the payment down.
    function test_settle_tamperingFails() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);

        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        settle(p, alice, PaymentWitness(w.facilitator, w.facilitator, w.validAfter), sig);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        settle(p, alice, PaymentWitness(carol, w.facilitator, w.validAfter - 1), sig);
        // A higher ceiling than the payer signed.
        p.permitted.amount = 2e6;
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        settle(p, alice, w, sig);
        p.permitted.amount = 1e6;

        // Signed for Permit2 with another spender (here: the test contract), replayed through the proxy.
        bytes memory otherSpender = packed(alicePk, witnessDigest(p, address(this), w));
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        settle(p, alice, w, otherSpender);

        settle(p, alice, w, sig);
        assertEq(usdc.balanceOf(carol), metered(1e6), "honest settlement still pays");
    }

    // ------------------------------------------------------------ settleWithPermit

    function test_settleWithPermit_approvesPermit2AndPays() public {
        mintUsdc(bob, 3e6);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 3e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(bobPk, p, w);
        BaseProxy.EIP2612Permit memory pp = sign2612(bobPk, 3e6, p.deadline);
        assertEq(usdc.allowance(bob, PERMIT2_ADDRESS), 0, "no prior approval");
        uint256 paid = metered(3e6);

        vm.expectEmit(true, true, false, true, BASE_USDC);
        emit IERC20.Approval(bob, PERMIT2_ADDRESS, 3e6);
        vm.expectEmit(true, true, false, true, BASE_USDC);
        emit IERC20.Transfer(bob, carol, paid);
        vm.expectEmit(false, false, false, true, proxyAddress());
        emit BaseProxy.SettledWithPermit();
        settleWithPermit(pp, p, bob, w, sig);

        assertEq(usdc.balanceOf(carol), paid, "carol");
        assertEq(usdc.balanceOf(bob), 3e6 - paid, "bob keeps the rest");
        assertEq(usdc.nonces(bob), 1, "2612 nonce spent");
        assertEq(usdc.allowance(bob, PERMIT2_ADDRESS), 3e6 - paid, "approval charged only what moved");
    }

    function test_settleWithPermit_amountMismatchFirst() public {
        (ISignatureTransfer.PermitTransferFrom memory p, PaymentWitness memory w,) = failingPayment();
        BaseProxy.EIP2612Permit memory pp = sign2612(alicePk, 1, p.deadline);
        vm.expectRevert(abi.encodeWithSelector(BaseProxy.Permit2612AmountMismatch.selector));
        settleWithPermit(pp, p, address(0), w, "");
        // Equal values fall through to settle's own checks.
        pp.value = 0;
        vm.expectRevert(abi.encodeWithSelector(BaseProxy.InvalidAmount.selector));
        settleWithPermit(pp, p, address(0), w, "");
    }

    function test_settleWithPermit_failedPermitWithAllowance_stillPays() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 2e6);
        PaymentWitness memory w = witnessTo(carol);
        BaseProxy.EIP2612Permit memory pp = sign2612(bobPk, 2e6, p.deadline); // wrong key for alice

        vm.expectEmit(true, true, false, true, proxyAddress());
        emit BaseProxy.EIP2612PermitFailedWithReason(BASE_USDC, alice, "EIP2612: invalid signature");
        vm.expectEmit(false, false, false, true, proxyAddress());
        emit BaseProxy.SettledWithPermit();
        settleWithPermit(pp, p, alice, w, signed(alicePk, p, w));
        assertEq(usdc.balanceOf(carol), metered(2e6), "paid on the existing allowance");
    }

    /// @dev Someone submits the payer's 2612 permit first; settlement must not be griefed by that.
    function test_settleWithPermit_frontRunPermit_stillPays() public {
        mintUsdc(bob, 1e6);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        BaseProxy.EIP2612Permit memory pp = sign2612(bobPk, 1e6, p.deadline);
        usdc.permit(bob, PERMIT2_ADDRESS, pp.value, pp.deadline, pp.v, pp.r, pp.s);

        vm.expectEmit(true, true, false, true, proxyAddress());
        emit BaseProxy.EIP2612PermitFailedWithReason(BASE_USDC, bob, "EIP2612: invalid signature");
        settleWithPermit(pp, p, bob, w, signed(bobPk, p, w));
        assertEq(usdc.balanceOf(carol), metered(1e6), "paid");
    }

    function test_settleWithPermit_failedPermitNoAllowance_reverts() public {
        mintUsdc(bob, 1e6);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        BaseProxy.EIP2612Permit memory pp = sign2612(bobPk, 1e6, block.timestamp - 1); // expired
        vm.expectRevert(bytes("TRANSFER_FROM_FAILED"));
        settleWithPermit(pp, p, bob, w, signed(bobPk, p, w));
    }

    function test_settleWithPermit_permitSucceeds_noFailureEvent() public {
        PermitBehaviourToken token = behaviourToken(PermitBehaviourToken.PermitMode.Approve);
        vm.recordLogs();
        settleBehaviour(token);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only SettledWithPermit (the double token logs nothing)");
        assertEq(logs[0].emitter, proxyAddress(), "emitter");
        assertEq(logs[0].topics[0], BaseProxy.SettledWithPermit.selector, "event");
    }

    function test_settleWithPermit_permitReason() public {
        PermitBehaviourToken token = behaviourToken(PermitBehaviourToken.PermitMode.RevertString);
        vm.expectEmit(true, true, false, true, proxyAddress());
        emit BaseProxy.EIP2612PermitFailedWithReason(address(token), alice, "permit: rejected");
        settleBehaviour(token);
    }

    function test_settleWithPermit_permitPanic() public {
        PermitBehaviourToken token = behaviourToken(PermitBehaviourToken.PermitMode.Panic);
        vm.expectEmit(true, true, false, true, proxyAddress());
        emit BaseProxy.EIP2612PermitFailedWithPanic(address(token), alice, 0x11);
        settleBehaviour(token);
    }

    function test_settleWithPermit_permitCustomError() public {
        PermitBehaviourToken token = behaviourToken(PermitBehaviourToken.PermitMode.CustomError);
        vm.expectEmit(true, true, false, true, proxyAddress());
        emit BaseProxy.EIP2612PermitFailedWithData(
            address(token), alice, abi.encodeWithSelector(PermitBehaviourToken.PermitRejected.selector, alice)
        );
        settleBehaviour(token);
    }

    function test_settleWithPermit_permitEmptyRevert() public {
        PermitBehaviourToken token = behaviourToken(PermitBehaviourToken.PermitMode.Empty);
        vm.expectEmit(true, true, false, true, proxyAddress());
        emit BaseProxy.EIP2612PermitFailedWithData(address(token), alice, "");
        settleBehaviour(token);
    }

    // ------------------------------------------------------------ reentrancy

    /// @dev A token re-entering from `permit` is stopped by the guard; the proxy logs that and carries on.
    function test_reentrancy_fromPermit_blockedAndLogged() public {
        PermitBehaviourToken token = behaviourToken(PermitBehaviourToken.PermitMode.Approve);
        ISignatureTransfer.PermitTransferFrom memory inner = newPermit(BASE_USDC, 1e6);
        // Naming the token as facilitator: the guard, not the upto facilitator check, must be what stops it.
        PaymentWitness memory w = PaymentWitness(carol, address(token), block.timestamp);
        token.armReentry(proxyAddress(), settleCall(inner, alice, w, signed(alicePk, inner, w)));

        vm.expectEmit(true, true, false, true, proxyAddress());
        emit BaseProxy.EIP2612PermitFailedWithData(
            address(token), alice, abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector)
        );
        settleBehaviour(token);
        assertEq(usdc.balanceOf(carol), 0, "inner settlement never happened");
        assertEq(vm.load(proxyAddress(), GUARD_SLOT), bytes32(uint256(1)), "guard released");
    }

    /// @dev Permit2 lets an ERC-1271 wallet's revert through, so the guard's own error reaches the caller.
    function test_reentrancy_fromWallet_reverts() public {
        ReentrantWallet wallet = new ReentrantWallet();
        mintUsdc(address(wallet), 2e6);
        vm.prank(address(wallet));
        usdc.approve(PERMIT2_ADDRESS, type(uint256).max);
        ISignatureTransfer.PermitTransferFrom memory inner = newPermit(BASE_USDC, 1e6);
        ISignatureTransfer.PermitTransferFrom memory outer = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = PaymentWitness(carol, address(wallet), block.timestamp);
        wallet.arm(proxyAddress(), settleCall(inner, address(wallet), w, ""));
        w.facilitator = relayer;

        vm.expectRevert(abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector));
        settle(outer, address(wallet), w, "");

        // Disarmed (pointing at a harmless view), the same wallet pays: the revert above was the guard.
        wallet.arm(proxyAddress(), abi.encodeWithSignature("WITNESS_TYPEHASH()"));
        settle(outer, address(wallet), w, "");
        assertEq(usdc.balanceOf(carol), metered(1e6), "paid");
    }

    // ------------------------------------------------------------ fuzz

    function testFuzz_validAfter(uint256 validAfter, uint256 now_) public {
        now_ = bound(now_, 1, type(uint64).max);
        validAfter = bound(validAfter, 0, type(uint64).max);
        vm.warp(now_);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = PaymentWitness(carol, relayer, validAfter);
        bytes memory sig = signed(alicePk, p, w);
        if (now_ < validAfter) vm.expectRevert(abi.encodeWithSelector(BaseProxy.PaymentTooEarly.selector));
        settle(p, alice, w, sig);
        assertEq(usdc.balanceOf(carol), now_ < validAfter ? 0 : metered(1e6), "carol");
    }

    function testFuzz_wrongSignerNeverPays(uint256 pk) public {
        pk = bound(pk, 1, SECP256K1_N - 1);
        vm.assume(pk != alicePk);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        settle(p, alice, w, signed(pk, p, w));
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS, "alice untouched");
    }

    function testFuzz_redirectedDestinationNeverPays(address to) public {
        vm.assume(to != carol && to != address(0));
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        settle(p, alice, PaymentWitness(to, w.facilitator, w.validAfter), sig);
    }
}
