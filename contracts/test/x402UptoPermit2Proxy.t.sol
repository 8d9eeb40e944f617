// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISignatureTransfer, Permit2} from "../src/Permit2.sol";
import {x402BasePermit2Proxy as BaseProxy} from "../src/x402BasePermit2Proxy.sol";
import {x402UptoPermit2Proxy as Proxy} from "../src/x402UptoPermit2Proxy.sol";
import {Permit2ProxySuite} from "./utils/Permit2ProxySuite.sol";

/// @dev The behaviour both proxies share runs from Permit2ProxySuite, here metered below the signed maximum;
/// here are the hooks and what is upto's own: the caller-chosen amount and the named facilitator.
contract X402UptoPermit2ProxyTest is Permit2ProxySuite {
    /// @dev viem `hashTypedData` with @x402/evm 2.27.0 `uptoPermit2WitnessTypes` for the vector in
    /// test_settle_sdkVector (chain 8453, spender `x402UptoPermit2ProxyAddress`, facilitator 0xF00D).
    bytes32 internal constant SDK_VECTOR_DIGEST = 0x09d5d588f6f8982733413d7f6952e72057e161ce1120f9e77d99138f066cbd6a;

    function proxyAddress() internal pure override returns (address) {
        return UPTO_PROXY_ADDRESS;
    }

    function proxyArtifact() internal pure override returns (string memory) {
        return "x402UptoPermit2Proxy.sol:x402UptoPermit2Proxy";
    }

    function proxyRuntimeCode() internal pure override returns (bytes memory) {
        return type(Proxy).runtimeCode;
    }

    /// @dev Below the maximum, so the shared tests also show that only the metered amount moves; 0 stays 0 for
    /// the InvalidAmount checks.
    function metered(uint256 maximum) internal pure override returns (uint256) {
        return maximum - maximum / 4;
    }

    function witnessDigest(ISignatureTransfer.PermitTransferFrom memory p, address spender, PaymentWitness memory w)
        internal
        view
        override
        returns (bytes32)
    {
        return uptoWitnessDigest(p, spender, w.to, w.facilitator, w.validAfter);
    }

    function settleCall(
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal pure override returns (bytes memory) {
        return settleCall(p, metered(p.permitted.amount), owner, w, sig);
    }

    function settleCall(
        ISignatureTransfer.PermitTransferFrom memory p,
        uint256 amount,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal pure returns (bytes memory) {
        return abi.encodeCall(Proxy.settle, (p, amount, owner, uptoWitness(w), sig));
    }

    function settleWithPermitCall(
        BaseProxy.EIP2612Permit memory pp,
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal pure override returns (bytes memory) {
        return settleWithPermitCall(pp, p, metered(p.permitted.amount), owner, w, sig);
    }

    function settleWithPermitCall(
        BaseProxy.EIP2612Permit memory pp,
        ISignatureTransfer.PermitTransferFrom memory p,
        uint256 amount,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal pure returns (bytes memory) {
        return abi.encodeCall(Proxy.settleWithPermit, (pp, p, amount, owner, uptoWitness(w), sig));
    }

    function uptoWitness(PaymentWitness memory w) internal pure returns (Proxy.Witness memory) {
        return Proxy.Witness(w.to, w.facilitator, w.validAfter);
    }

    // ------------------------------------------------------------ views

    function test_views() public view {
        Proxy proxy = Proxy(UPTO_PROXY_ADDRESS);
        assertEq(proxy.WITNESS_TYPE_STRING(), UPTO_WITNESS_TYPE_STRING, "type string");
        assertEq(proxy.WITNESS_TYPEHASH(), UPTO_WITNESS_TYPEHASH, "typehash");
    }

    // ------------------------------------------------------------ settle

    function test_settle_sdkVector() public {
        ISignatureTransfer.PermitTransferFrom memory p;
        p.permitted = ISignatureTransfer.TokenPermissions(BASE_USDC, 1234567);
        p.nonce = 0xdeadbeefcafebabe0123456789abcdef0123456789abcdef0123456789abcdef;
        p.deadline = 1700003600;
        PaymentWitness memory w = PaymentWitness(carol, address(0xF00D), 1699999000);
        assertEq(witnessDigest(p, UPTO_PROXY_ADDRESS, w), SDK_VECTOR_DIGEST, "digest");

        submit(address(0xF00D), settleCall(p, 1000000, alice, w, packed(alicePk, SDK_VECTOR_DIGEST)));
        assertEq(usdc.balanceOf(carol), 1000000, "paid");
    }

    /// @dev The unused headroom is not a second payment: the signature is gone with its nonce.
    function test_settle_partialAmount_spendsNonce() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 10e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        submit(relayer, settleCall(p, 3_250_000, alice, w, sig));
        assertEq(permit2.nonceBitmap(alice, p.nonce >> 8), nonceMask(p.nonce), "Permit2 nonce spent");

        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        submit(relayer, settleCall(p, 10e6 - 3_250_000, alice, w, sig));
        assertEq(usdc.balanceOf(carol), 3_250_000, "paid once");
    }

    function test_settle_fullAmount() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 12e6);
        PaymentWitness memory w = witnessTo(carol);
        submit(relayer, settleCall(p, 12e6, alice, w, signed(alicePk, p, w)));
        assertEq(usdc.balanceOf(carol), 12e6, "carol");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 12e6, "alice");
    }

    function test_settle_aboveMaximum_reverts() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 5e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        vm.expectRevert(abi.encodeWithSelector(Proxy.AmountExceedsPermitted.selector));
        submit(relayer, settleCall(p, 5e6 + 1, alice, w, sig));
        vm.expectRevert(abi.encodeWithSelector(Proxy.AmountExceedsPermitted.selector));
        submit(relayer, settleCall(p, type(uint256).max, alice, w, sig));

        submit(relayer, settleCall(p, 5e6, alice, w, sig));
        assertEq(usdc.balanceOf(carol), 5e6, "the maximum itself still pays");
    }

    function test_settle_otherCaller_reverts() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        address[4] memory callers = [alice, carol, address(this), UPTO_PROXY_ADDRESS];
        for (uint256 i = 0; i < callers.length; i++) {
            vm.expectRevert(abi.encodeWithSelector(Proxy.UnauthorizedFacilitator.selector));
            submit(callers[i], settleCall(p, 1e6, alice, w, sig));
        }
        assertEq(permit2.nonceBitmap(alice, p.nonce >> 8), 0, "nonce still unspent");

        submit(relayer, settleCall(p, 1e6, alice, w, sig));
        assertEq(usdc.balanceOf(carol), 1e6, "the named facilitator still can");
    }

    /// @dev The upto checks come before the shared ones (test_settle_revertOrder); a zero amount under a
    /// non-zero maximum is still InvalidAmount.
    function test_settle_uptoChecksFirst() public {
        (ISignatureTransfer.PermitTransferFrom memory p, PaymentWitness memory w, bytes memory bad) = failingPayment();

        vm.expectRevert(abi.encodeWithSelector(Proxy.AmountExceedsPermitted.selector));
        submit(carol, settleCall(p, 1, address(0), w, bad));
        vm.expectRevert(abi.encodeWithSelector(Proxy.UnauthorizedFacilitator.selector));
        submit(carol, settleCall(p, 0, address(0), w, bad));
        p.permitted.amount = 1e6;
        vm.expectRevert(abi.encodeWithSelector(BaseProxy.InvalidAmount.selector));
        submit(relayer, settleCall(p, 0, address(0), w, bad));
    }

    /// @dev What someone who saw the signature could try beyond the shared tampering cases.
    function test_settle_tamperingFails_upto() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);

        // Naming itself in the witness lets the interloper past the proxy, not past the payer's signature.
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        submit(bob, settleCall(p, 1e6, alice, PaymentWitness(carol, bob, w.validAfter), sig));
        // Signed for the exact proxy's witness type: a different struct hash even for the same fields.
        bytes memory exactSig = packed(alicePk, exactWitnessDigest(p, UPTO_PROXY_ADDRESS, w.to, w.validAfter));
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        submit(relayer, settleCall(p, 1e6, alice, w, exactSig));

        submit(relayer, settleCall(p, 1e6, alice, w, sig));
        assertEq(usdc.balanceOf(carol), 1e6, "honest settlement still pays");
    }

    // ------------------------------------------------------------ settleWithPermit

    /// @dev The upto checks come before the 2612 amount check (test_settleWithPermit_amountMismatchFirst).
    function test_settleWithPermit_uptoChecksFirst() public {
        (ISignatureTransfer.PermitTransferFrom memory p, PaymentWitness memory w,) = failingPayment();
        BaseProxy.EIP2612Permit memory pp = sign2612(alicePk, 1, p.deadline);

        vm.expectRevert(abi.encodeWithSelector(Proxy.AmountExceedsPermitted.selector));
        submit(relayer, settleWithPermitCall(pp, p, 1, address(0), w, ""));
        vm.expectRevert(abi.encodeWithSelector(Proxy.UnauthorizedFacilitator.selector));
        submit(carol, settleWithPermitCall(pp, p, 0, address(0), w, ""));
    }

    /// @dev The 2612 value must be the signed maximum, even when the metered amount is what moves.
    function test_settleWithPermit_valueIsTheMaximum() public {
        mintUsdc(bob, 3e6);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 3e6);
        PaymentWitness memory w = witnessTo(carol);
        BaseProxy.EIP2612Permit memory pp = sign2612(bobPk, 1e6, p.deadline);
        vm.expectRevert(abi.encodeWithSelector(BaseProxy.Permit2612AmountMismatch.selector));
        submit(relayer, settleWithPermitCall(pp, p, 1e6, bob, w, signed(bobPk, p, w)));
    }

    // ------------------------------------------------------------ fuzz

    function testFuzz_anyAmountUpToMaximumMovesExactly(uint256 maximum, uint256 amount) public {
        maximum = bound(maximum, 1, ALICE_FUNDS);
        amount = bound(amount, 1, maximum);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, maximum);
        PaymentWitness memory w = witnessTo(carol);
        submit(relayer, settleCall(p, amount, alice, w, signed(alicePk, p, w)));
        assertEq(usdc.balanceOf(carol), amount, "carol");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - amount, "alice");
        // FiatToken charges even a max allowance, so this shows Permit2 pulled the amount and nothing else.
        assertEq(usdc.allowance(alice, PERMIT2_ADDRESS), type(uint256).max - amount, "allowance charged once");
    }

    function testFuzz_aboveMaximumRefused(uint256 maximum, uint256 amount) public {
        maximum = bound(maximum, 0, ALICE_FUNDS);
        amount = bound(amount, maximum + 1, type(uint256).max);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, maximum);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        vm.expectRevert(abi.encodeWithSelector(Proxy.AmountExceedsPermitted.selector));
        submit(relayer, settleCall(p, amount, alice, w, sig));
    }

    function testFuzz_otherCallerRefused(address caller, uint256 amount) public {
        vm.assume(caller != relayer);
        amount = bound(amount, 1, 1e6);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = witnessTo(carol);
        bytes memory sig = signed(alicePk, p, w);
        vm.expectRevert(abi.encodeWithSelector(Proxy.UnauthorizedFacilitator.selector));
        submit(caller, settleCall(p, amount, alice, w, sig));
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS, "alice untouched");
    }
}
