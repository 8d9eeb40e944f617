// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC3009DepositCollector} from "../src/ERC3009DepositCollector.sol";
import {DepositCollector} from "../src/interfaces/IDepositCollector.sol";
import {MockERC20} from "../src/MockERC20.sol";
import {Permit2} from "../src/Permit2.sol";
import {Permit2DepositCollector} from "../src/Permit2DepositCollector.sol";
import {x402BatchSettlement} from "../src/x402BatchSettlement.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";

contract DepositCollectorsTest is BatchFixture {
    uint128 internal constant DEPOSIT = 10_000;
    address internal constant MOCK_ERC20_ADDRESS = 0x00000000000000000000000000000000000E2020;

    MockERC20 internal token;

    function setUp() public override {
        super.setUp();
        vm.etch(MOCK_ERC20_ADDRESS, type(MockERC20).runtimeCode);
        token = MockERC20(MOCK_ERC20_ADDRESS);
    }

    function test_collectorsAreBoundToTheCanonicalBatchContract() public {
        assertEq(
            ERC3009DepositCollector(ERC3009_COLLECTOR_ADDRESS).x402BatchSettlement(), BATCH_ADDRESS, "erc3009 batch"
        );
        Permit2DepositCollector p2 = Permit2DepositCollector(PERMIT2_COLLECTOR_ADDRESS);
        assertEq(p2.x402BatchSettlement(), BATCH_ADDRESS, "permit2 batch");
        assertEq(address(p2.PERMIT2()), PERMIT2_ADDRESS, "permit2");
        assertEq(p2.DEPOSIT_WITNESS_TYPEHASH(), keccak256("DepositWitness(bytes32 channelId)"), "witness typehash");
        assertEq(
            p2.DEPOSIT_WITNESS_TYPE_STRING(),
            "DepositWitness witness)DepositWitness(bytes32 channelId)TokenPermissions(address token,uint256 amount)",
            "witness type string"
        );

        // Called directly, an observer could spend the payer's authorization into a channel of its own.
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes memory data = erc3009Data(alicePk, c, DEPOSIT);
        vm.expectRevert(abi.encodeWithSelector(DepositCollector.OnlyX402BatchSettlement.selector));
        ERC3009DepositCollector(ERC3009_COLLECTOR_ADDRESS).collect(alice, BASE_USDC, DEPOSIT, channelIdOf(c), data);
        data = permit2Data(alicePk, c, DEPOSIT, "");
        vm.expectRevert(abi.encodeWithSelector(DepositCollector.OnlyX402BatchSettlement.selector));
        p2.collect(alice, BASE_USDC, DEPOSIT, channelIdOf(c), data);
    }

    // ---------------------------------------------------------------- ERC-3009

    function test_erc3009AuthorizationIsBoundToItsChannelAndUsedOnce() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes memory data = erc3009Data(alicePk, c, DEPOSIT);
        // The nonce is derived from the channel id: the same signature cannot fund another channel.
        x402BatchSettlement.ChannelConfig memory other = defaultConfig();
        other.salt = bytes32(uint256(9));
        vm.expectRevert(revertData("FiatTokenV2: invalid signature"));
        batch.deposit(other, DEPOSIT, ERC3009_COLLECTOR_ADDRESS, data);
        // Nor another amount.
        vm.expectRevert(revertData("FiatTokenV2: invalid signature"));
        batch.deposit(c, DEPOSIT - 1, ERC3009_COLLECTOR_ADDRESS, data);

        batch.deposit(c, DEPOSIT, ERC3009_COLLECTOR_ADDRESS, data);
        vm.expectRevert(revertData("FiatTokenV2: authorization is used or canceled"));
        batch.deposit(c, DEPOSIT, ERC3009_COLLECTOR_ADDRESS, data);
        (uint128 balance,) = channelState(channelIdOf(c));
        assertEq(balance, DEPOSIT, "credited once");
    }

    function testFuzz_erc3009Deposit(uint128 amount, bytes32 salt) public {
        amount = uint128(bound(amount, 1, ALICE_FUNDS));
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.salt = salt;
        depositErc3009(c, amount);
        (uint128 balance,) = channelState(channelIdOf(c));
        assertEq(balance, amount, "balance");
        assertEq(usdc.balanceOf(BATCH_ADDRESS), amount, "escrow");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - amount, "payer");
    }

    // ---------------------------------------------------------------- Permit2

    function testFuzz_permit2Deposit(uint128 amount) public {
        amount = uint128(bound(amount, 1, ALICE_FUNDS));
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes32 id = channelIdOf(c);
        bytes memory data = permit2Data(alicePk, c, amount, "");
        vm.expectEmit(true, true, false, true, BATCH_ADDRESS);
        emit x402BatchSettlement.Deposited(id, relayer, amount, amount);
        vm.prank(relayer);
        batch.deposit(c, amount, PERMIT2_COLLECTOR_ADDRESS, data);
        assertEq(usdc.balanceOf(BATCH_ADDRESS), amount, "escrow");
        assertEq(usdc.balanceOf(PERMIT2_COLLECTOR_ADDRESS), 0, "collector holds nothing");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - amount, "payer");
    }

    function test_permit2WitnessBindsTheChannel() public {
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        bytes memory data = permit2Data(alicePk, c, DEPOSIT, "");
        x402BatchSettlement.ChannelConfig memory other = defaultConfig();
        other.receiver = carol;
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidSigner.selector));
        batch.deposit(other, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, data);
        batch.deposit(c, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, data);
        vm.expectRevert(abi.encodeWithSelector(Permit2.InvalidNonce.selector));
        batch.deposit(c, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, data);
    }

    /// @dev A token without EIP-3009, paid for by an EIP-2612 permit of Permit2 in the same deposit.
    function test_permit2DepositWithEip2612Sponsoring() public {
        token.mint(bob, DEPOSIT);
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.payer = bob;
        c.token = MOCK_ERC20_ADDRESS;
        bytes memory permit = eip2612(bobPk, DEPOSIT);

        batch.deposit(c, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, permit2Data(bobPk, c, DEPOSIT, permit));
        assertEq(token.balanceOf(BATCH_ADDRESS), DEPOSIT, "escrowed");
        assertEq(token.allowance(bob, PERMIT2_ADDRESS), 0, "the permit covered exactly the deposit");
        assertEq(token.nonces(bob), 1, "permit used");

        // EIP-3009 is not there: the ERC-3009 collector cannot pull this token.
        token.mint(bob, DEPOSIT);
        vm.expectRevert();
        batch.deposit(c, DEPOSIT, ERC3009_COLLECTOR_ADDRESS, erc3009Data(bobPk, c, DEPOSIT));
    }

    function test_eip2612PermitMustMatchTheDeposit() public {
        token.mint(bob, DEPOSIT);
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.payer = bob;
        c.token = MOCK_ERC20_ADDRESS;
        bytes memory data = permit2Data(bobPk, c, DEPOSIT, eip2612(bobPk, DEPOSIT + 1));
        vm.expectRevert(abi.encodeWithSelector(Permit2DepositCollector.Permit2612AmountMismatch.selector));
        batch.deposit(c, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, data);
    }

    /// @dev A spent or bad permit only logs: an allowance already in place still pays.
    function test_failedEip2612PermitLogsAndFallsBackToTheAllowance() public {
        token.mint(bob, DEPOSIT);
        vm.prank(bob);
        token.approve(PERMIT2_ADDRESS, DEPOSIT);
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.payer = bob;
        c.token = MOCK_ERC20_ADDRESS;
        bytes memory byStranger = eip2612(carolPk(), DEPOSIT);
        (,, uint8 v, bytes32 r, bytes32 s) = abi.decode(byStranger, (uint256, uint256, uint8, bytes32, bytes32));
        address recovered = ecrecover(permitDigest(bob, DEPOSIT, 0, block.timestamp + 1 hours), v, r, s);
        bytes memory data = permit2Data(bobPk, c, DEPOSIT, byStranger);
        vm.expectEmit(true, true, false, true, PERMIT2_COLLECTOR_ADDRESS);
        emit Permit2DepositCollector.EIP2612PermitFailedWithData(
            MOCK_ERC20_ADDRESS, bob, abi.encodeWithSelector(MockERC20.ERC2612InvalidSigner.selector, recovered, bob)
        );
        batch.deposit(c, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, data);
        assertEq(token.balanceOf(BATCH_ADDRESS), DEPOSIT, "paid from the allowance");
    }

    function test_permit2DepositNeedsAnAllowance() public {
        token.mint(bob, DEPOSIT);
        x402BatchSettlement.ChannelConfig memory c = defaultConfig();
        c.payer = bob;
        c.token = MOCK_ERC20_ADDRESS;
        bytes memory data = permit2Data(bobPk, c, DEPOSIT, "");
        vm.expectRevert(revertData("TRANSFER_FROM_FAILED"));
        batch.deposit(c, DEPOSIT, PERMIT2_COLLECTOR_ADDRESS, data);
    }

    // ---------------------------------------------------------------- helpers

    function carolPk() private pure returns (uint256) {
        return 0xCA401;
    }

    function permitDigest(address owner, uint256 value, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        bytes32 domain = keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("Mock Dollar"), keccak256("1"), block.chainid, MOCK_ERC20_ADDRESS)
        );
        return keccak256(
            abi.encodePacked(
                hex"1901",
                domain,
                keccak256(abi.encode(PERMIT_TYPEHASH, owner, PERMIT2_ADDRESS, value, nonce, deadline))
            )
        );
    }

    /// @dev EIP-2612 data as the SDK facilitator encodes it: `abi.encode(value, deadline, v, r, s)`, owner bob.
    function eip2612(uint256 pk, uint256 value) private view returns (bytes memory) {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, permitDigest(bob, value, token.nonces(bob), deadline));
        return abi.encode(value, deadline, v, r, s);
    }
}
