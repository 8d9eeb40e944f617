// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MockUSDC} from "../src/MockUSDC.sol";
import {USDCFixture} from "./utils/USDCFixture.sol";

contract MockUSDCAdminTest is USDCFixture {
    address internal minter = address(0x3141);
    address internal stranger = address(0xBAD);

    // ------------------------------------------------------------ metadata and setup

    function test_metadata() public view {
        assertEq(usdc.name(), "USD Coin", "name");
        assertEq(usdc.symbol(), "USDC", "symbol");
        assertEq(usdc.decimals(), 6, "decimals");
        assertEq(usdc.version(), "2", "version");
        assertEq(usdc.currency(), "USD", "currency");
        assertEq(usdc.totalSupply(), ALICE_FUNDS, "supply");
        assertEq(usdc.DOMAIN_SEPARATOR(), domainSeparator(address(usdc)), "domain");
    }

    function test_constructor_assignsAllRolesAndBlacklistsSelf() public view {
        assertEq(usdc.owner(), admin, "owner");
        assertEq(usdc.masterMinter(), admin, "masterMinter");
        assertEq(usdc.pauser(), admin, "pauser");
        assertEq(usdc.blacklister(), admin, "blacklister");
        assertFalse(usdc.paused(), "paused");
        assertTrue(usdc.isBlacklisted(address(usdc)), "self blacklisted");
    }

    function test_initialize_afterConstructor_reverts() public {
        vm.expectRevert(bytes("FiatToken: contract is already initialized"));
        usdc.initialize(stranger, stranger, stranger, stranger);
    }

    // ------------------------------------------------------------ minting

    function test_configureMinter_mint_decreasesAllowance() public {
        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.MinterConfigured(minter, 100e6);
        vm.prank(admin);
        assertTrue(usdc.configureMinter(minter, 100e6), "configureMinter returns true");
        assertTrue(usdc.isMinter(minter), "isMinter");
        assertEq(usdc.minterAllowance(minter), 100e6, "allowance");

        vm.expectEmit(true, true, false, true, address(usdc));
        emit MockUSDC.Mint(minter, bob, 40e6);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(address(0), bob, 40e6);
        vm.prank(minter);
        assertTrue(usdc.mint(bob, 40e6), "mint returns true");

        assertEq(usdc.balanceOf(bob), 40e6, "bob");
        assertEq(usdc.minterAllowance(minter), 60e6, "allowance decreased");
        assertEq(usdc.totalSupply(), ALICE_FUNDS + 40e6, "supply");

        vm.prank(minter);
        vm.expectRevert(bytes("FiatToken: mint amount exceeds minterAllowance"));
        usdc.mint(bob, 60e6 + 1);
        vm.prank(minter);
        usdc.mint(bob, 60e6);
        assertEq(usdc.minterAllowance(minter), 0, "allowance exhausted");
    }

    function test_mint_guards() public {
        vm.prank(admin);
        usdc.configureMinter(minter, 100e6);

        vm.prank(minter);
        vm.expectRevert(bytes("FiatToken: mint to the zero address"));
        usdc.mint(address(0), 1);
        vm.prank(minter);
        vm.expectRevert(bytes("FiatToken: mint amount not greater than 0"));
        usdc.mint(bob, 0);
        vm.prank(stranger);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        usdc.mint(bob, 1);

        vm.prank(admin);
        usdc.blacklist(bob);
        vm.prank(minter);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.mint(bob, 1);

        // A blacklisted minter can neither mint nor burn.
        vm.prank(minter);
        usdc.mint(minter, 1);
        vm.prank(admin);
        usdc.blacklist(minter);
        vm.prank(minter);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.mint(carol, 1);
        vm.prank(minter);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.burn(1);
    }

    function test_configureMinter_onlyMasterMinter() public {
        vm.prank(stranger);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        usdc.configureMinter(stranger, 1);
        vm.prank(stranger);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        usdc.removeMinter(admin);
    }

    function test_removeMinter() public {
        vm.startPrank(admin);
        usdc.configureMinter(minter, 100e6);
        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.MinterRemoved(minter);
        assertTrue(usdc.removeMinter(minter), "removeMinter returns true");
        vm.stopPrank();

        assertFalse(usdc.isMinter(minter), "isMinter");
        assertEq(usdc.minterAllowance(minter), 0, "allowance cleared");
        vm.prank(minter);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        usdc.mint(bob, 1);
    }

    function test_burn() public {
        vm.startPrank(admin);
        usdc.configureMinter(minter, 100e6);
        vm.stopPrank();
        vm.prank(minter);
        usdc.mint(minter, 10e6);

        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.Burn(minter, 4e6);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(minter, address(0), 4e6);
        vm.prank(minter);
        usdc.burn(4e6);
        assertEq(usdc.balanceOf(minter), 6e6, "balance");
        assertEq(usdc.totalSupply(), ALICE_FUNDS + 6e6, "supply");

        vm.prank(minter);
        vm.expectRevert(bytes("FiatToken: burn amount exceeds balance"));
        usdc.burn(6e6 + 1);
        vm.prank(minter);
        vm.expectRevert(bytes("FiatToken: burn amount not greater than 0"));
        usdc.burn(0);
        vm.prank(alice);
        vm.expectRevert(bytes("FiatToken: caller is not a minter"));
        usdc.burn(1);
    }

    function test_updateMasterMinter() public {
        vm.prank(stranger);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        usdc.updateMasterMinter(stranger);

        vm.prank(admin);
        vm.expectRevert(bytes("FiatToken: new masterMinter is the zero address"));
        usdc.updateMasterMinter(address(0));

        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.MasterMinterChanged(minter);
        vm.prank(admin);
        usdc.updateMasterMinter(minter);
        assertEq(usdc.masterMinter(), minter, "masterMinter");

        vm.prank(admin);
        vm.expectRevert(bytes("FiatToken: caller is not the masterMinter"));
        usdc.configureMinter(admin, 1);
        vm.prank(minter);
        usdc.configureMinter(minter, 1);
    }

    // ------------------------------------------------------------ pausing

    function test_pause_blocksTransfersApprovalsAndMinting() public {
        vm.prank(alice);
        usdc.approve(carol, 10e6);

        vm.prank(stranger);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        usdc.pause();

        vm.expectEmit(false, false, false, true, address(usdc));
        emit MockUSDC.Pause();
        vm.prank(admin);
        usdc.pause();
        assertTrue(usdc.paused(), "paused");

        vm.prank(alice);
        vm.expectRevert(bytes("Pausable: paused"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(bob, 1);
        vm.prank(carol);
        vm.expectRevert(bytes("Pausable: paused"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transferFrom(alice, bob, 1);
        vm.prank(alice);
        vm.expectRevert(bytes("Pausable: paused"));
        usdc.approve(bob, 1);
        vm.prank(admin);
        vm.expectRevert(bytes("Pausable: paused"));
        usdc.mint(bob, 1);
        vm.prank(admin);
        vm.expectRevert(bytes("Pausable: paused"));
        usdc.configureMinter(minter, 1);

        vm.prank(stranger);
        vm.expectRevert(bytes("Pausable: caller is not the pauser"));
        usdc.unpause();
        vm.expectEmit(false, false, false, true, address(usdc));
        emit MockUSDC.Unpause();
        vm.prank(admin);
        usdc.unpause();
        vm.prank(alice);
        assertTrue(usdc.transfer(bob, 1), "transfer returns true");
        assertEq(usdc.balanceOf(bob), 1, "transfers resume");
    }

    function test_updatePauser() public {
        vm.prank(stranger);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        usdc.updatePauser(stranger);
        vm.prank(admin);
        vm.expectRevert(bytes("Pausable: new pauser is the zero address"));
        usdc.updatePauser(address(0));

        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.PauserChanged(stranger);
        vm.prank(admin);
        usdc.updatePauser(stranger);
        assertEq(usdc.pauser(), stranger, "pauser");
        vm.prank(stranger);
        usdc.pause();
        assertTrue(usdc.paused(), "new pauser can pause");
    }

    // ------------------------------------------------------------ blacklisting

    function test_blacklist_blocksFromToAndCaller() public {
        vm.prank(alice);
        usdc.approve(carol, 10e6);

        vm.prank(stranger);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        usdc.blacklist(alice);

        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.Blacklisted(bob);
        vm.prank(admin);
        usdc.blacklist(bob);
        assertTrue(usdc.isBlacklisted(bob), "isBlacklisted");

        // to
        vm.prank(alice);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(bob, 1);
        vm.prank(carol);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transferFrom(alice, bob, 1);
        vm.prank(alice);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.approve(bob, 1);

        // from / msg.sender
        vm.prank(admin);
        usdc.blacklist(alice);
        vm.prank(alice);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(carol, 1);
        vm.prank(carol);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transferFrom(alice, carol, 1);
        vm.prank(alice);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.approve(carol, 1);

        // spender as msg.sender of transferFrom
        vm.startPrank(admin);
        usdc.unBlacklist(alice);
        usdc.blacklist(carol);
        vm.stopPrank();
        vm.prank(carol);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transferFrom(alice, relayer, 1);

        vm.prank(stranger);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        usdc.unBlacklist(carol);
        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.UnBlacklisted(carol);
        vm.prank(admin);
        usdc.unBlacklist(carol);
        assertFalse(usdc.isBlacklisted(carol), "unblacklisted");
        vm.prank(carol);
        assertTrue(usdc.transferFrom(alice, relayer, 1), "transferFrom returns true");
        assertEq(usdc.balanceOf(relayer), 1, "transfers resume");
    }

    function test_updateBlacklister() public {
        vm.prank(stranger);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        usdc.updateBlacklister(stranger);
        vm.prank(admin);
        vm.expectRevert(bytes("Blacklistable: new blacklister is the zero address"));
        usdc.updateBlacklister(address(0));

        vm.expectEmit(true, false, false, true, address(usdc));
        emit MockUSDC.BlacklisterChanged(stranger);
        vm.prank(admin);
        usdc.updateBlacklister(stranger);
        assertEq(usdc.blacklister(), stranger, "blacklister");
        vm.prank(stranger);
        usdc.blacklist(bob);
        vm.prank(admin);
        vm.expectRevert(bytes("Blacklistable: caller is not the blacklister"));
        usdc.unBlacklist(bob);
    }

    // ------------------------------------------------------------ ownership

    function test_transferOwnership() public {
        vm.prank(stranger);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        usdc.transferOwnership(stranger);
        vm.prank(admin);
        vm.expectRevert(bytes("Ownable: new owner is the zero address"));
        usdc.transferOwnership(address(0));

        vm.expectEmit(false, false, false, true, address(usdc));
        emit MockUSDC.OwnershipTransferred(admin, bob);
        vm.prank(admin);
        usdc.transferOwnership(bob);
        assertEq(usdc.owner(), bob, "owner");

        vm.prank(admin);
        vm.expectRevert(bytes("Ownable: caller is not the owner"));
        usdc.updatePauser(admin);
        vm.prank(bob);
        usdc.updatePauser(bob);
        assertEq(usdc.pauser(), bob, "new owner governs");
    }

    // ------------------------------------------------------------ plain ERC-20 paths

    function test_transfer_guards() public {
        vm.prank(alice);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(bob, ALICE_FUNDS + 1);
        vm.prank(alice);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(address(0), 1);
        vm.prank(alice);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(address(usdc), 1);

        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(alice, bob, ALICE_FUNDS);
        vm.prank(alice);
        assertTrue(usdc.transfer(bob, ALICE_FUNDS), "transfer returns true");
        assertEq(usdc.balanceOf(bob), ALICE_FUNDS, "bob");
    }

    function test_transferFrom_decrementsEvenMaxAllowance() public {
        vm.prank(alice);
        usdc.approve(carol, type(uint256).max);
        vm.prank(carol);
        assertTrue(usdc.transferFrom(alice, bob, 5e6), "transferFrom returns true");
        // FiatToken has no infinite-allowance special case.
        assertEq(usdc.allowance(alice, carol), type(uint256).max - 5e6, "allowance");
    }

    function test_transferFrom_guards() public {
        vm.prank(alice);
        usdc.approve(carol, 5e6);
        vm.prank(carol);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transferFrom(alice, bob, 5e6 + 1);

        vm.prank(bob);
        usdc.approve(carol, 5e6);
        vm.prank(carol);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transferFrom(bob, alice, 1);
        vm.prank(carol);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transferFrom(alice, address(0), 1);
    }

    function test_approve_guards() public {
        vm.prank(alice);
        vm.expectRevert(bytes("ERC20: approve to the zero address"));
        usdc.approve(address(0), 1);

        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Approval(alice, carol, 3);
        vm.prank(alice);
        assertTrue(usdc.approve(carol, 3), "approve returns true");
        assertEq(usdc.allowance(alice, carol), 3, "allowance");
    }

    function testFuzz_transfer_conservesSupply(uint256 value, address to) public {
        vm.assume(to != address(0) && to != address(usdc) && to != alice);
        value = bound(value, 0, ALICE_FUNDS * 2);
        vm.prank(alice);
        if (value > ALICE_FUNDS) vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(to, value);
        assertEq(usdc.balanceOf(alice) + usdc.balanceOf(to), ALICE_FUNDS, "conserved");
    }
}
