// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ISignatureTransfer, Permit2} from "../src/Permit2.sol";
import {ShapedToken} from "./utils/Permit2Doubles.sol";
import {Permit2Fixture} from "./utils/Permit2Fixture.sol";
import {OwnedWallet, RejectingWallet, RevertingWallet} from "./utils/Wallets.sol";

contract Permit2Test is Permit2Fixture {
    /// @dev viem `hashTypedData` with @x402/evm 2.27.0's `permit2WitnessTypes` for `sdkVectorPermit()` on chain 8453
    /// (computed once offline): ties the hand-built digests below to what the official client signs.
    bytes32 internal constant SDK_VECTOR_DIGEST = 0x705dd4d54cb3a088e6cb083bb3b4713d1298381f1c1ef8b6a8439c2bd130f577;

    // Each call helper makes exactly one external call, so a vm.expectRevert placed before it applies.
    // The test contract is the spender unless a test pranks another one.

    function pull(
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        address to,
        uint256 amount,
        bytes memory sig
    ) internal {
        permit2.permitWitnessTransferFrom(
            p,
            ISignatureTransfer.SignatureTransferDetails(to, amount),
            owner,
            exactWitnessHash(to, 0),
            EXACT_WITNESS_TYPE_STRING,
            sig
        );
    }

    function pullPlain(
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        address to,
        uint256 amount,
        bytes memory sig
    ) internal {
        permit2.permitTransferFrom(p, ISignatureTransfer.SignatureTransferDetails(to, amount), owner, sig);
    }

    function signed(uint256 pk, ISignatureTransfer.PermitTransferFrom memory p, address to)
        internal
        view
        returns (bytes memory)
    {
        return packed(pk, exactWitnessDigest(p, address(this), to, 0));
    }

    function nonceBit(address owner, uint256 nonce) internal view returns (bool) {
        return permit2.nonceBitmap(owner, nonce >> 8) & nonceMask(nonce) != 0;
    }

    // ------------------------------------------------------------ domain

    function test_domainSeparator_canonicalOnBase() public view {
        assertEq(block.chainid, BASE_CHAIN_ID, "fixture chain");
        assertEq(permit2.DOMAIN_SEPARATOR(), BASE_PERMIT2_DOMAIN_SEPARATOR, "Base Permit2 separator");
        assertEq(permit2.DOMAIN_SEPARATOR(), permit2DomainSeparator(), "hand-computed, no version");
    }

    /// @dev No cache: the separator follows the chain id and the address the code was placed at.
    function test_domainSeparator_computedPerCall() public {
        vm.chainId(31337);
        assertEq(
            permit2.DOMAIN_SEPARATOR(),
            keccak256(abi.encode(PERMIT2_DOMAIN_TYPEHASH, keccak256("Permit2"), 31337, PERMIT2_ADDRESS)),
            "anvil chain id"
        );
        Permit2 elsewhere = new Permit2();
        assertEq(
            elsewhere.DOMAIN_SEPARATOR(),
            keccak256(abi.encode(PERMIT2_DOMAIN_TYPEHASH, keccak256("Permit2"), 31337, address(elsewhere))),
            "other address"
        );
        vm.chainId(BASE_CHAIN_ID);
        assertEq(permit2.DOMAIN_SEPARATOR(), BASE_PERMIT2_DOMAIN_SEPARATOR, "back on Base");
    }

    function test_placedFromArtifactBytecode() public {
        bytes memory artifact = vm.getDeployedCode("Permit2.sol:Permit2");
        assertEq(artifact, type(Permit2).runtimeCode, "artifact = runtime code (no immutables to patch)");
        vm.etch(PERMIT2_ADDRESS, artifact);
        assertEq(permit2.DOMAIN_SEPARATOR(), BASE_PERMIT2_DOMAIN_SEPARATOR, "separator");
        assertEq(permit2.nonceBitmap(alice, 0), 0, "fresh storage");
    }

    // ------------------------------------------------------------ digests

    function sdkVectorPermit() internal pure returns (ISignatureTransfer.PermitTransferFrom memory p) {
        p.permitted = ISignatureTransfer.TokenPermissions(BASE_USDC, 1234567);
        p.nonce = 0xdeadbeefcafebabe0123456789abcdef0123456789abcdef0123456789abcdef;
        p.deadline = 1700003600;
    }

    function test_witnessDigest_matchesSdkVector() public {
        ISignatureTransfer.PermitTransferFrom memory p = sdkVectorPermit();
        bytes32 digest = exactWitnessDigest(p, EXACT_PROXY_ADDRESS, carol, 1699999000);
        assertEq(digest, SDK_VECTOR_DIGEST, "hand-computed = viem/SDK");

        // Permit2 itself must land on the same digest: only then does the SDK-shaped signature pass.
        vm.prank(EXACT_PROXY_ADDRESS);
        permit2.permitWitnessTransferFrom(
            p,
            ISignatureTransfer.SignatureTransferDetails(carol, 1234567),
            alice,
            exactWitnessHash(carol, 1699999000),
            EXACT_WITNESS_TYPE_STRING,
            packed(alicePk, digest)
        );
        assertEq(usdc.balanceOf(carol), 1234567, "paid");
    }

    /// @dev The stub plus the caller's type string must hash to the fully spelled-out EIP-712 type.
    function test_witnessTypehash_isStubPlusTypeString() public pure {
        assertEq(
            keccak256(
                abi.encodePacked(
                    "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,",
                    EXACT_WITNESS_TYPE_STRING
                )
            ),
            EXACT_PERMIT_WITNESS_TYPEHASH,
            "typehash"
        );
    }

    // ------------------------------------------------------------ permitWitnessTransferFrom

    function test_witnessTransfer_movesFundsAndEmitsNothingItself() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 5e6);
        bytes memory sig = signed(alicePk, p, carol);

        vm.recordLogs();
        pull(p, alice, carol, 3e6, sig);
        // Less than permitted is allowed; the rest of the permit is gone with the nonce.
        assertEq(usdc.balanceOf(carol), 3e6, "carol");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 3e6, "alice");
        assertTrue(nonceBit(alice, p.nonce), "nonce spent");

        // The token's Transfer is the only log: Permit2 emits nothing on a signature transfer.
        uint256 logs = vm.getRecordedLogs().length;
        assertEq(logs, 1, "one log");
    }

    function test_witnessTransfer_logIsTokenTransfer() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 2e6);
        bytes memory sig = signed(alicePk, p, carol);
        vm.expectEmit(true, true, false, true, BASE_USDC);
        emit IERC20.Transfer(alice, carol, 2e6);
        pull(p, alice, carol, 2e6, sig);
    }

    function test_witnessTransfer_deadlineIsInclusive() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        p.deadline = block.timestamp;
        pull(p, alice, carol, 1e6, signed(alicePk, p, carol));
        assertEq(usdc.balanceOf(carol), 1e6, "paid at the deadline");
    }

    function test_witnessTransfer_compactSignature_bothParities() public {
        bool[2] memory seen;
        for (uint256 i = 0; i < 32 && !(seen[0] && seen[1]); i++) {
            ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1);
            bytes32 digest = exactWitnessDigest(p, address(this), carol, 0);
            (uint8 v,,) = vm.sign(alicePk, digest);
            bytes memory sig = compact(alicePk, digest);
            assertEq(sig.length, 64, "EIP-2098 length");
            pull(p, alice, carol, 1, sig);
            seen[v - 27] = true;
        }
        assertTrue(seen[0] && seen[1], "both parities exercised");
    }

    /// @dev Upstream applies no low-s rule; the malleable twin settles the same permit (once).
    function test_witnessTransfer_highS_accepted() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, exactWitnessDigest(p, address(this), carol, 0));
        (v, r, s) = highS(v, r, s);
        pull(p, alice, carol, 1e6, abi.encodePacked(r, s, v));
        assertEq(usdc.balanceOf(carol), 1e6, "paid");
    }

    function test_witnessTransfer_nonceOrderIsFree() public {
        ISignatureTransfer.PermitTransferFrom memory a = newPermit(BASE_USDC, 1);
        ISignatureTransfer.PermitTransferFrom memory b = newPermit(BASE_USDC, 1);
        b.nonce = 0;
        a.nonce = type(uint256).max;
        bytes memory sigA = signed(alicePk, a, carol);
        bytes memory sigB = signed(alicePk, b, carol);
        pull(a, alice, carol, 1, sigA);
        pull(b, alice, carol, 1, sigB);
        assertEq(permit2.nonceBitmap(alice, 0), 1, "word 0 bit 0");
        assertEq(permit2.nonceBitmap(alice, type(uint256).max >> 8), 1 << 255, "last word, last bit");
    }

    function test_witnessTransfer_noncesArePerOwner() public {
        mintUsdc(bob, 10e6);
        vm.prank(bob);
        usdc.approve(PERMIT2_ADDRESS, type(uint256).max);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        pull(p, alice, carol, 1e6, signed(alicePk, p, carol));
        pull(p, bob, carol, 1e6, signed(bobPk, p, carol));
        assertEq(usdc.balanceOf(carol), 2e6, "same nonce, two owners");
    }

    function test_witnessTransfer_contractOwner_eip1271() public {
        OwnedWallet wallet = new OwnedWallet(bob);
        mintUsdc(address(wallet), 10e6);
        vm.prank(address(wallet));
        usdc.approve(PERMIT2_ADDRESS, type(uint256).max);

        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 4e6);
        pull(p, address(wallet), carol, 4e6, signed(bobPk, p, carol));
        assertEq(usdc.balanceOf(carol), 4e6, "wallet paid");

        // An EOA-valid signature of the wallet address itself means nothing: the wallet decides.
        p = newPermit(BASE_USDC, 1e6);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidContractSignature.selector));
        pull(p, address(wallet), carol, 1e6, signed(alicePk, p, carol));
    }

    /// @dev Contract owners skip the length rules: the wallet gets the bytes as they came.
    function test_witnessTransfer_contractOwner_anySignatureLength() public {
        RejectingWallet wallet = new RejectingWallet();
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidContractSignature.selector));
        pull(p, address(wallet), carol, 1, "");
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidContractSignature.selector));
        pull(p, address(wallet), carol, 1, new bytes(100));
    }

    function test_witnessTransfer_revertingWalletBubbles() public {
        RevertingWallet wallet = new RevertingWallet();
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1);
        vm.expectRevert(bytes("wallet says no"));
        pull(p, address(wallet), carol, 1, new bytes(65));
    }

    // ------------------------------------------------------------ revert order (section 2)

    /// @dev Every later check would fail too; the earliest one must be the one reported.
    function test_revertOrder_expiredFirst() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        pull(p, alice, carol, 1e6, signed(alicePk, p, carol));
        p.deadline = block.timestamp - 1;
        vm.expectRevert(abi.encodeWithSelector(Permit2.SignatureExpired.selector, p.deadline));
        pull(p, alice, carol, 2e6, hex"00");
    }

    function test_revertOrder_amountBeforeNonce() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        pull(p, alice, carol, 1e6, signed(alicePk, p, carol));
        vm.expectRevert(abi.encodeWithSelector(ISignatureTransfer.InvalidAmount.selector, 1e6));
        pull(p, alice, carol, 1e6 + 1, hex"00");
    }

    function test_revertOrder_nonceBeforeSignature() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        bytes memory sig = signed(alicePk, p, carol);
        pull(p, alice, carol, 1e6, sig);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        pull(p, alice, carol, 1e6, sig);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        pull(p, alice, carol, 1e6, hex"00");
        assertEq(usdc.balanceOf(carol), 1e6, "paid once");
    }

    function test_revertOrder_signatureLength() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        bytes memory sig = signed(alicePk, p, carol);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignatureLength.selector));
        pull(p, alice, carol, 1e6, "");
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignatureLength.selector));
        pull(p, alice, carol, 1e6, abi.encodePacked(sig, uint8(0)));
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignatureLength.selector));
        pull(p, alice, carol, 1e6, new bytes(63));
        // Failed attempts revert whole, so the nonce is still there for the real signature.
        pull(p, alice, carol, 1e6, sig);
    }

    function test_revertOrder_unrecoverableSignature() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        (, bytes32 r, bytes32 s) = vm.sign(alicePk, exactWitnessDigest(p, address(this), carol, 0));
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignature.selector));
        pull(p, alice, carol, 1e6, abi.encodePacked(r, s, uint8(29)));
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignature.selector));
        pull(p, alice, carol, 1e6, new bytes(65));
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignature.selector));
        pull(p, alice, carol, 1e6, new bytes(64));
    }

    function test_revertOrder_wrongSigner() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pull(p, alice, carol, 1e6, signed(bobPk, p, carol));
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pull(p, alice, carol, 1e6, compact(bobPk, exactWitnessDigest(p, address(this), carol, 0)));
        assertFalse(nonceBit(alice, p.nonce), "nonce untouched");
    }

    function test_revertOrder_transferLast() public {
        // Bob signs correctly but never approved Permit2: everything passes until the token says no.
        mintUsdc(bob, 5e6);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        vm.expectRevert(bytes("TRANSFER_FROM_FAILED"));
        pull(p, bob, carol, 1e6, signed(bobPk, p, carol));

        // Approved but short of funds: the token's own reason is replaced all the same.
        p = newPermit(BASE_USDC, ALICE_FUNDS + 1);
        vm.expectRevert(bytes("TRANSFER_FROM_FAILED"));
        pull(p, alice, carol, ALICE_FUNDS + 1, signed(alicePk, p, carol));
    }

    // ------------------------------------------------------------ what the signature binds

    function test_signatureBindsSpenderWitnessAndFields() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        bytes memory sig = signed(alicePk, p, carol);

        // Another spender submitting the same permit.
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pull(p, alice, carol, 1e6, sig);

        // Redirected funds: the witness names carol.
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        permit2.permitWitnessTransferFrom(
            p,
            ISignatureTransfer.SignatureTransferDetails(bob, 1e6),
            alice,
            exactWitnessHash(bob, 0),
            EXACT_WITNESS_TYPE_STRING,
            sig
        );

        // Same witness hash under another type string.
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        permit2.permitWitnessTransferFrom(
            p,
            ISignatureTransfer.SignatureTransferDetails(carol, 1e6),
            alice,
            exactWitnessHash(carol, 0),
            "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter,bytes extra)",
            sig
        );

        // A fresh struct: assigning one memory struct to another aliases it.
        ISignatureTransfer.PermitTransferFrom memory q = newPermit(BASE_USDC, 2e6);
        q.nonce = p.nonce;
        q.deadline = p.deadline;
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pull(q, alice, carol, 1e6, sig);
        q = newPermit(BASE_USDC, 1e6);
        q.nonce = p.nonce;
        q.deadline = p.deadline + 1;
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pull(q, alice, carol, 1e6, sig);

        // A plain (witness-less) transfer is a different type.
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pullPlain(p, alice, carol, 1e6, sig);

        pull(p, alice, carol, 1e6, sig);
        assertEq(usdc.balanceOf(carol), 1e6, "the untampered permit still pays");
    }

    // ------------------------------------------------------------ permitTransferFrom

    function test_permitTransferFrom_plain() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 7e6);
        bytes memory sig = packed(alicePk, transferDigest(p, address(this)));
        pullPlain(p, alice, bob, 7e6, sig);
        assertEq(usdc.balanceOf(bob), 7e6, "bob");
        assertTrue(nonceBit(alice, p.nonce), "nonce spent");

        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        pullPlain(p, alice, bob, 7e6, sig);
    }

    function test_permitTransferFrom_sameChecksInOrder() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        bytes memory sig = packed(alicePk, transferDigest(p, address(this)));
        p.deadline = block.timestamp - 1;
        vm.expectRevert(abi.encodeWithSelector(Permit2.SignatureExpired.selector, p.deadline));
        pullPlain(p, alice, bob, 2e6, sig);
        p.deadline = block.timestamp + 1 hours;
        vm.expectRevert(abi.encodeWithSelector(ISignatureTransfer.InvalidAmount.selector, 1e6));
        pullPlain(p, alice, bob, 2e6, sig);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSignatureLength.selector));
        pullPlain(p, alice, bob, 1e6, hex"1234");
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pullPlain(p, alice, bob, 1e6, packed(bobPk, transferDigest(p, address(this))));
        pullPlain(p, alice, bob, 1e6, compact(alicePk, transferDigest(p, address(this))));
        assertEq(usdc.balanceOf(bob), 1e6, "compact signature pays");
    }

    // ------------------------------------------------------------ invalidateUnorderedNonces

    function test_invalidateUnorderedNonces_blocksPermitAndEmits() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        bytes memory sig = signed(alicePk, p, carol);
        uint256 word = p.nonce >> 8;
        uint256 mask = nonceMask(p.nonce);

        vm.expectEmit(true, false, false, true, PERMIT2_ADDRESS);
        emit ISignatureTransfer.UnorderedNonceInvalidation(alice, word, mask);
        vm.prank(alice);
        permit2.invalidateUnorderedNonces(word, mask);
        assertEq(permit2.nonceBitmap(alice, word), mask, "bit set");

        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        pull(p, alice, carol, 1e6, sig);
    }

    function test_invalidateUnorderedNonces_onlyTouchesCaller() public {
        vm.prank(bob);
        permit2.invalidateUnorderedNonces(0, type(uint256).max);
        assertEq(permit2.nonceBitmap(bob, 0), type(uint256).max, "bob");
        assertEq(permit2.nonceBitmap(alice, 0), 0, "alice untouched");
    }

    // ------------------------------------------------------------ token answers (solmate SafeTransferLib)

    function shapedPermit(ShapedToken.Answer answer)
        internal
        returns (ShapedToken token, ISignatureTransfer.PermitTransferFrom memory p, bytes memory sig)
    {
        token = new ShapedToken();
        token.setAnswer(answer);
        token.mint(alice, 10);
        vm.prank(alice);
        token.approve(PERMIT2_ADDRESS, type(uint256).max);
        p = newPermit(address(token), 10);
        sig = signed(alicePk, p, carol);
    }

    function test_token_returnsTrue_pays() public {
        (ShapedToken token, ISignatureTransfer.PermitTransferFrom memory p, bytes memory sig) =
            shapedPermit(ShapedToken.Answer.True);
        pull(p, alice, carol, 10, sig);
        assertEq(token.balanceOf(carol), 10, "paid");
    }

    function test_token_returnsNothing_pays() public {
        (ShapedToken token, ISignatureTransfer.PermitTransferFrom memory p, bytes memory sig) =
            shapedPermit(ShapedToken.Answer.Nothing);
        pull(p, alice, carol, 10, sig);
        assertEq(token.balanceOf(carol), 10, "paid");
    }

    function test_token_returnsFalse_reverts() public {
        (, ISignatureTransfer.PermitTransferFrom memory p, bytes memory sig) = shapedPermit(ShapedToken.Answer.False);
        vm.expectRevert(bytes("TRANSFER_FROM_FAILED"));
        pull(p, alice, carol, 10, sig);
    }

    function test_token_revertReasonReplaced() public {
        (, ISignatureTransfer.PermitTransferFrom memory p, bytes memory sig) = shapedPermit(ShapedToken.Answer.Revert);
        vm.expectRevert(bytes("TRANSFER_FROM_FAILED"));
        pull(p, alice, carol, 10, sig);
    }

    // ------------------------------------------------------------ fuzz

    function testFuzz_nonceBitmap_wordAndBit(uint256 nonce) public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1);
        p.nonce = nonce;
        bytes memory sig = signed(alicePk, p, carol);
        pull(p, alice, carol, 1, sig);
        assertEq(permit2.nonceBitmap(alice, nonce >> 8), nonceMask(nonce), "exactly one bit in its word");
        assertEq(permit2.nonceBitmap(alice, (nonce >> 8) ^ 1), 0, "neighbouring word untouched");

        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        pull(p, alice, carol, 1, sig);
    }

    function testFuzz_amountUpToPermitted(uint256 permitted, uint256 requested) public {
        permitted = bound(permitted, 0, ALICE_FUNDS);
        requested = bound(requested, 0, ALICE_FUNDS + 1);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, permitted);
        bytes memory sig = signed(alicePk, p, carol);
        if (requested > permitted) {
            vm.expectRevert(abi.encodeWithSelector(ISignatureTransfer.InvalidAmount.selector, permitted));
        }
        pull(p, alice, carol, requested, sig);
        assertEq(usdc.balanceOf(carol), requested > permitted ? 0 : requested, "carol");
    }

    function testFuzz_deadline(uint256 deadline, uint256 now_) public {
        now_ = bound(now_, 1, type(uint64).max);
        deadline = bound(deadline, 0, type(uint64).max);
        vm.warp(now_);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        p.deadline = deadline;
        bytes memory sig = signed(alicePk, p, carol);
        if (now_ > deadline) vm.expectRevert(abi.encodeWithSelector(Permit2.SignatureExpired.selector, deadline));
        pull(p, alice, carol, 1e6, sig);
        assertEq(usdc.balanceOf(carol), now_ > deadline ? 0 : 1e6, "carol");
    }

    function testFuzz_wrongSignerNeverTransfers(uint256 pk, bool compactForm) public {
        pk = bound(pk, 1, SECP256K1_N - 1);
        vm.assume(pk != alicePk);
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        bytes32 digest = exactWitnessDigest(p, address(this), carol, 0);
        bytes memory sig = compactForm ? compact(pk, digest) : packed(pk, digest);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        pull(p, alice, carol, 1e6, sig);
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS, "alice untouched");
        assertFalse(nonceBit(alice, p.nonce), "nonce untouched");
    }

    function testFuzz_invalidateUnorderedNonces_orsMasks(uint256 word, uint256 mask1, uint256 mask2) public {
        vm.prank(alice);
        permit2.invalidateUnorderedNonces(word, mask1);
        vm.prank(alice);
        permit2.invalidateUnorderedNonces(word, mask2);
        assertEq(permit2.nonceBitmap(alice, word), mask1 | mask2, "bits accumulate");
    }
}
