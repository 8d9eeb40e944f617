// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MockUSDC} from "../../src/MockUSDC.sol";
import {TestBase} from "./TestBase.sol";

/// @dev Shared state and signing for the MockUSDC suites. Digests are built here from the EIP-712
/// definitions, never read back from the token, so a wrong domain or typehash in the token shows up.
abstract contract USDCFixture is TestBase {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    /// @dev secp256k1 order, for forging the high-s twin of a signature.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant ALICE_FUNDS = 1_000e6;

    MockUSDC internal usdc;
    address internal admin = address(0xAD111);
    address internal relayer = address(0xF00D);
    address internal carol = address(0xCA401);

    uint256 internal alicePk = 0xA11CE;
    uint256 internal bobPk = 0xB0B;
    address internal alice;
    address internal bob;

    struct Auth {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    uint256 private _nonceCounter;

    function setUp() public virtual {
        vm.warp(START);
        alice = vm.addr(alicePk);
        bob = vm.addr(bobPk);
        usdc = new MockUSDC(admin);
        vm.startPrank(admin);
        usdc.configureMinter(admin, type(uint256).max);
        usdc.mint(alice, ALICE_FUNDS);
        vm.stopPrank();
    }

    function domainSeparator(address token) internal view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("USD Coin"), keccak256("2"), block.chainid, token));
    }

    function typedDigest(address token, bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(token), structHash));
    }

    function newAuth(address from, address to, uint256 value) internal returns (Auth memory a) {
        a = Auth(
            from, to, value, block.timestamp - 1, block.timestamp + 1 hours, keccak256(abi.encode(++_nonceCounter))
        );
    }

    function authDigest(bytes32 typehash, Auth memory a) internal view returns (bytes32) {
        return typedDigest(
            address(usdc), keccak256(abi.encode(typehash, a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce))
        );
    }

    function cancelDigest(address authorizer, bytes32 nonce) internal view returns (bytes32) {
        return typedDigest(address(usdc), keccak256(abi.encode(CANCEL_TYPEHASH, authorizer, nonce)));
    }

    function packed(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Same point, other half of the curve: ecrecover accepts it, EIP-2 style checks must not.
    function highS(uint8 v, bytes32 r, bytes32 s) internal pure returns (uint8, bytes32, bytes32) {
        return (v == 27 ? 28 : 27, r, bytes32(SECP256K1_N - uint256(s)));
    }

    // Each call helper makes exactly one external call, so a vm.expectRevert placed before it applies.

    function transferVRS(Auth memory a, uint8 v, bytes32 r, bytes32 s) internal {
        usdc.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
    }

    function transferBytes(Auth memory a, bytes memory sig) internal {
        usdc.transferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig);
    }

    function receiveVRS(Auth memory a, uint8 v, bytes32 r, bytes32 s) internal {
        usdc.receiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s);
    }

    function receiveBytes(Auth memory a, bytes memory sig) internal {
        usdc.receiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig);
    }
}
