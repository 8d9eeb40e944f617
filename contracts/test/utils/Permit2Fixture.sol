// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MockUSDC} from "../../src/MockUSDC.sol";
import {ISignatureTransfer, Permit2} from "../../src/Permit2.sol";
import {USDCFixture} from "./USDCFixture.sol";

/// @dev Base mainnet as the devnet builds it: chain id 8453, MockUSDC and Permit2 etched at their canonical
/// addresses (no constructors). Permit2 digests are built here from the EIP-712 type strings, never read back
/// from the contracts, so a wrong typehash or domain in Permit2 fails the signature check.
abstract contract Permit2Fixture is USDCFixture {
    uint256 internal constant BASE_CHAIN_ID = 8453;
    address internal constant BASE_USDC = 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913;
    address internal constant PERMIT2_ADDRESS = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    address internal constant EXACT_PROXY_ADDRESS = 0x402085c248EeA27D92E8b30b2C58ed07f9E20001;
    address internal constant UPTO_PROXY_ADDRESS = 0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002;
    /// @dev What real Permit2 reports on Base.
    bytes32 internal constant BASE_PERMIT2_DOMAIN_SEPARATOR =
        0x3b6f35e4fce979ef8eac3bcdc8c3fc38fe7911bb0c69c8fe72bf1fd1a17e6f07;

    bytes32 internal constant PERMIT2_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");
    bytes32 internal constant TOKEN_PERMISSIONS_TYPEHASH = keccak256("TokenPermissions(address token,uint256 amount)");
    bytes32 internal constant PERMIT_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)TokenPermissions(address token,uint256 amount)"
    );
    string internal constant EXACT_WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";
    bytes32 internal constant EXACT_WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");
    /// @dev Spelled out in full, as viem assembles it from the SDK's `permit2WitnessTypes`.
    bytes32 internal constant EXACT_PERMIT_WITNESS_TYPEHASH = keccak256(
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
    );

    string internal constant UPTO_WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";
    bytes32 internal constant UPTO_WITNESS_TYPEHASH =
        keccak256("Witness(address to,address facilitator,uint256 validAfter)");
    /// @dev Spelled out in full, as viem assembles it from the SDK's `uptoPermit2WitnessTypes`.
    bytes32 internal constant UPTO_PERMIT_WITNESS_TYPEHASH = keccak256(
        "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)"
    );

    Permit2 internal permit2;
    uint256 private _permit2NonceCounter;

    function setUp() public virtual override {
        super.setUp();
        vm.chainId(BASE_CHAIN_ID);

        vm.etch(BASE_USDC, type(MockUSDC).runtimeCode);
        usdc = MockUSDC(BASE_USDC);
        usdc.initialize(admin, admin, admin, admin);
        vm.startPrank(admin);
        usdc.configureMinter(admin, type(uint256).max);
        usdc.mint(alice, ALICE_FUNDS);
        vm.stopPrank();

        vm.etch(PERMIT2_ADDRESS, type(Permit2).runtimeCode);
        permit2 = Permit2(PERMIT2_ADDRESS);

        vm.prank(alice);
        usdc.approve(PERMIT2_ADDRESS, type(uint256).max);
    }

    function mintUsdc(address to, uint256 amount) internal {
        vm.prank(admin);
        usdc.mint(to, amount);
    }

    function permit2DomainSeparator() internal view returns (bytes32) {
        return keccak256(abi.encode(PERMIT2_DOMAIN_TYPEHASH, keccak256("Permit2"), block.chainid, PERMIT2_ADDRESS));
    }

    function permit2Digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", permit2DomainSeparator(), structHash));
    }

    /// @dev Fresh, scattered nonces: Permit2's are unordered, so consecutive ones would hide word-boundary bugs.
    function newPermit(address token, uint256 amount)
        internal
        returns (ISignatureTransfer.PermitTransferFrom memory p)
    {
        p.permitted = ISignatureTransfer.TokenPermissions(token, amount);
        p.nonce = uint256(keccak256(abi.encode("permit2 nonce", ++_permit2NonceCounter)));
        p.deadline = block.timestamp + 1 hours;
    }

    function tokenPermissionsHash(ISignatureTransfer.PermitTransferFrom memory p) internal pure returns (bytes32) {
        return keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, p.permitted.token, p.permitted.amount));
    }

    function transferDigest(ISignatureTransfer.PermitTransferFrom memory p, address spender)
        internal
        view
        returns (bytes32)
    {
        return permit2Digest(
            keccak256(abi.encode(PERMIT_TRANSFER_FROM_TYPEHASH, tokenPermissionsHash(p), spender, p.nonce, p.deadline))
        );
    }

    function exactWitnessHash(address to, uint256 validAfter) internal pure returns (bytes32) {
        return keccak256(abi.encode(EXACT_WITNESS_TYPEHASH, to, validAfter));
    }

    function exactWitnessDigest(
        ISignatureTransfer.PermitTransferFrom memory p,
        address spender,
        address to,
        uint256 validAfter
    ) internal view returns (bytes32) {
        return permitWitnessDigest(EXACT_PERMIT_WITNESS_TYPEHASH, p, spender, exactWitnessHash(to, validAfter));
    }

    function uptoWitnessDigest(
        ISignatureTransfer.PermitTransferFrom memory p,
        address spender,
        address to,
        address facilitator,
        uint256 validAfter
    ) internal view returns (bytes32) {
        bytes32 witness = keccak256(abi.encode(UPTO_WITNESS_TYPEHASH, to, facilitator, validAfter));
        return permitWitnessDigest(UPTO_PERMIT_WITNESS_TYPEHASH, p, spender, witness);
    }

    function permitWitnessDigest(
        bytes32 permitWitnessTypehash,
        ISignatureTransfer.PermitTransferFrom memory p,
        address spender,
        bytes32 witness
    ) private view returns (bytes32) {
        return permit2Digest(
            keccak256(abi.encode(permitWitnessTypehash, tokenPermissionsHash(p), spender, p.nonce, p.deadline, witness))
        );
    }

    /// @dev The bit a nonce occupies in its bitmap word (`nonce >> 8`).
    function nonceMask(uint256 nonce) internal pure returns (uint256) {
        // forge-lint: disable-next-line(incorrect-shift)
        return 1 << (nonce & 0xff);
    }

    /// @dev EIP-2098: r ‖ (parity << 255 | s).
    function compact(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, bytes32(uint256(s) | (uint256(v - 27) << 255)));
    }
}
