// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MockUSDC} from "../src/MockUSDC.sol";
import {USDCFixture} from "./utils/USDCFixture.sol";

/// @dev The devnet does not deploy MockUSDC: it copies runtime code to Base's USDC address with
/// anvil_setCode and calls initialize. These tests replay that with vm.etch.
contract MockUSDCPlacementTest is USDCFixture {
    address internal constant BASE_USDC = 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913;
    address internal constant OWNER = address(0x0111);
    address internal constant MASTER_MINTER = address(0x0222);
    address internal constant PAUSER = address(0x0333);
    address internal constant BLACKLISTER = address(0x0444);

    function place(bytes memory code) internal {
        vm.etch(BASE_USDC, code);
        usdc = MockUSDC(BASE_USDC);
        usdc.initialize(OWNER, MASTER_MINTER, PAUSER, BLACKLISTER);
    }

    function test_placedFromCompilerRuntimeCode() public {
        place(type(MockUSDC).runtimeCode);
        checkPlaced();
    }

    /// @dev What node tooling etches: `deployedBytecode` from the build artifact, not a live contract's code.
    function test_placedFromArtifactBytecode() public {
        bytes memory artifact = vm.getDeployedCode("MockUSDC.sol:MockUSDC");
        assertEq(artifact, type(MockUSDC).runtimeCode, "artifact = runtime code (no immutables to patch)");
        place(artifact);
        checkPlaced();
    }

    function test_placedFromDeployedInstanceCode() public {
        // The fixture's constructor-built token lives elsewhere; its code must not carry its address along.
        place(address(usdc).code);
        checkPlaced();
    }

    function checkPlaced() internal {
        assertEq(usdc.name(), "USD Coin", "name");
        assertEq(usdc.symbol(), "USDC", "symbol");
        assertEq(usdc.decimals(), 6, "decimals");
        assertEq(usdc.version(), "2", "version");
        assertEq(usdc.totalSupply(), 0, "fresh storage");
        assertEq(usdc.owner(), OWNER, "owner");
        assertEq(usdc.masterMinter(), MASTER_MINTER, "masterMinter");
        assertEq(usdc.pauser(), PAUSER, "pauser");
        assertEq(usdc.blacklister(), BLACKLISTER, "blacklister");
        assertTrue(usdc.isBlacklisted(BASE_USDC), "self blacklisted");

        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("USD Coin"),
                keccak256("2"),
                block.chainid,
                BASE_USDC
            )
        );
        assertEq(usdc.DOMAIN_SEPARATOR(), expected, "domain separator");

        vm.expectRevert(bytes("FiatToken: contract is already initialized"));
        usdc.initialize(OWNER, MASTER_MINTER, PAUSER, BLACKLISTER);

        vm.prank(MASTER_MINTER);
        usdc.configureMinter(MASTER_MINTER, 100e6);
        vm.prank(MASTER_MINTER);
        usdc.mint(alice, 10e6);

        Auth memory a = newAuth(alice, bob, 2e6);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        transferVRS(a, v, r, s);
        assertEq(usdc.balanceOf(bob), 2e6, "paid at the canonical address");
    }

    function test_domainFollowsChainId() public {
        place(type(MockUSDC).runtimeCode);
        vm.prank(MASTER_MINTER);
        usdc.configureMinter(MASTER_MINTER, 100e6);
        vm.prank(MASTER_MINTER);
        usdc.mint(alice, 10e6);

        vm.chainId(8453);
        assertEq(usdc.DOMAIN_SEPARATOR(), domainSeparator(BASE_USDC), "on 8453");
        Auth memory a = newAuth(alice, bob, 1e6);
        bytes memory signedOnBase = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        vm.chainId(84532);
        bytes32 sepolia = usdc.DOMAIN_SEPARATOR();
        assertEq(sepolia, domainSeparator(BASE_USDC), "on 84532");
        // A signature for another chain must not settle here.
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        transferBytes(a, signedOnBase);
        transferBytes(a, packed(alicePk, authDigest(TRANSFER_TYPEHASH, a)));
        assertEq(usdc.balanceOf(bob), 1e6, "paid with this chain's signature");
    }

    function test_initialize_rejectsZeroRoles() public {
        vm.etch(BASE_USDC, type(MockUSDC).runtimeCode);
        MockUSDC placed = MockUSDC(BASE_USDC);
        vm.expectRevert(bytes("FiatToken: new masterMinter is the zero address"));
        placed.initialize(OWNER, address(0), PAUSER, BLACKLISTER);
        vm.expectRevert(bytes("FiatToken: new pauser is the zero address"));
        placed.initialize(OWNER, MASTER_MINTER, address(0), BLACKLISTER);
        vm.expectRevert(bytes("FiatToken: new blacklister is the zero address"));
        placed.initialize(OWNER, MASTER_MINTER, PAUSER, address(0));
        vm.expectRevert(bytes("FiatToken: new owner is the zero address"));
        placed.initialize(address(0), MASTER_MINTER, PAUSER, BLACKLISTER);
    }

    function test_uninitializedPlacement_hasNoRoles() public {
        vm.etch(BASE_USDC, type(MockUSDC).runtimeCode);
        MockUSDC placed = MockUSDC(BASE_USDC);
        // Roles are all address(0) until initialize, so no real account can mint or pause meanwhile.
        vm.prank(OWNER);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        placed.configureMinter(OWNER, 1);
        vm.prank(OWNER);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        placed.pause();
        assertEq(placed.name(), "USD Coin", "constants need no storage");
    }
}
