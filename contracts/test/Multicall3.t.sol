// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Multicall3} from "../src/Multicall3.sol";
import {TestBase} from "./utils/TestBase.sol";

contract Target {
    function stored() external pure returns (uint256) {
        return 42;
    }

    function echo(uint256 x) external pure returns (uint256) {
        return x;
    }

    function fail() external pure {
        revert("target failed");
    }

    function deposit() external payable returns (uint256) {
        return msg.value;
    }

    function whoCalls() external view returns (address) {
        return msg.sender;
    }
}

contract Multicall3Test is TestBase {
    address internal constant CANONICAL = 0xcA11bde05977b3631167028862bE2a173976CA11;

    Multicall3 internal mc;
    Target internal target;

    function setUp() public {
        mc = new Multicall3();
        target = new Target();
        vm.roll(100);
    }

    function call(bytes memory data) internal view returns (Multicall3.Call memory) {
        return Multicall3.Call(address(target), data);
    }

    function call3(bool allowFailure, bytes memory data) internal view returns (Multicall3.Call3 memory) {
        return Multicall3.Call3(address(target), allowFailure, data);
    }

    function twoCalls(bool secondFails) internal view returns (Multicall3.Call[] memory calls) {
        calls = new Multicall3.Call[](2);
        calls[0] = call(abi.encodeCall(Target.echo, (7)));
        calls[1] = secondFails ? call(abi.encodeCall(Target.fail, ())) : call(abi.encodeCall(Target.stored, ()));
    }

    // ------------------------------------------------------------ aggregate / tryAggregate

    function test_aggregate() public {
        (uint256 blockNumber, bytes[] memory data) = mc.aggregate(twoCalls(false));
        assertEq(blockNumber, 100, "block number");
        assertEq(data.length, 2, "results");
        assertEq(abi.decode(data[0], (uint256)), 7, "echo");
        assertEq(abi.decode(data[1], (uint256)), 42, "stored");
    }

    function test_aggregate_failure_reverts() public {
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.aggregate(twoCalls(true));
    }

    function test_aggregate_empty() public {
        (uint256 blockNumber, bytes[] memory data) = mc.aggregate(new Multicall3.Call[](0));
        assertEq(blockNumber, 100, "block number");
        assertEq(data.length, 0, "no results");
    }

    function test_tryAggregate_toleratesFailure() public {
        Multicall3.Result[] memory results = mc.tryAggregate(false, twoCalls(true));
        assertTrue(results[0].success, "first ok");
        assertEq(abi.decode(results[0].returnData, (uint256)), 7, "echo");
        assertFalse(results[1].success, "second failed");
        // The failing call's own revert data comes back for the caller to decode.
        assertEq(results[1].returnData, revertData("target failed"), "revert data kept");
    }

    function test_tryAggregate_requireSuccess_reverts() public {
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.tryAggregate(true, twoCalls(true));
        Multicall3.Result[] memory results = mc.tryAggregate(true, twoCalls(false));
        assertTrue(results[0].success && results[1].success, "all ok");
    }

    function test_tryBlockAndAggregate() public {
        (uint256 blockNumber, bytes32 blockHash, Multicall3.Result[] memory results) =
            mc.tryBlockAndAggregate(false, twoCalls(true));
        assertEq(blockNumber, 100, "block number");
        assertEq(blockHash, blockhash(100), "current block hash (zero by EVM rules)");
        assertFalse(results[1].success, "failure tolerated");

        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.tryBlockAndAggregate(true, twoCalls(true));
    }

    function test_blockAndAggregate() public {
        (uint256 blockNumber,, Multicall3.Result[] memory results) = mc.blockAndAggregate(twoCalls(false));
        assertEq(blockNumber, 100, "block number");
        assertEq(abi.decode(results[1].returnData, (uint256)), 42, "stored");

        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.blockAndAggregate(twoCalls(true));
    }

    // ------------------------------------------------------------ aggregate3 / aggregate3Value

    function test_aggregate3_allowFailurePerCall() public {
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](3);
        calls[0] = call3(false, abi.encodeCall(Target.echo, (1)));
        calls[1] = call3(true, abi.encodeCall(Target.fail, ()));
        calls[2] = call3(false, abi.encodeCall(Target.whoCalls, ()));
        Multicall3.Result[] memory results = mc.aggregate3(calls);
        assertTrue(results[0].success, "first");
        assertFalse(results[1].success, "second failed, allowed");
        assertEq(abi.decode(results[2].returnData, (address)), address(mc), "plain call, not delegatecall");

        calls[1].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.aggregate3(calls);
    }

    function test_aggregate3Value_forwardsValue() public {
        Multicall3.Call3Value[] memory calls = new Multicall3.Call3Value[](2);
        calls[0] = Multicall3.Call3Value(address(target), false, 1 ether, abi.encodeCall(Target.deposit, ()));
        calls[1] = Multicall3.Call3Value(address(target), false, 0, abi.encodeCall(Target.echo, (9)));
        vm.deal(address(this), 10 ether);
        Multicall3.Result[] memory results = mc.aggregate3Value{value: 1 ether}(calls);
        assertEq(abi.decode(results[0].returnData, (uint256)), 1 ether, "value seen by target");
        assertEq(abi.decode(results[1].returnData, (uint256)), 9, "echo");
        assertEq(address(target).balance, 1 ether, "target funded");
        assertEq(address(mc).balance, 0, "nothing stranded");
    }

    function test_aggregate3Value_mismatch_reverts() public {
        Multicall3.Call3Value[] memory calls = new Multicall3.Call3Value[](1);
        calls[0] = Multicall3.Call3Value(address(target), false, 1 ether, abi.encodeCall(Target.deposit, ()));
        vm.deal(address(this), 10 ether);
        vm.expectRevert(bytes("Multicall3: value mismatch"));
        mc.aggregate3Value{value: 2 ether}(calls);
        // Too little value starves the call itself, which fails first.
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.aggregate3Value{value: 0.5 ether}(calls);
    }

    function test_aggregate3Value_failure() public {
        Multicall3.Call3Value[] memory calls = new Multicall3.Call3Value[](2);
        calls[0] = Multicall3.Call3Value(address(target), true, 0, abi.encodeCall(Target.fail, ()));
        calls[1] = Multicall3.Call3Value(address(target), false, 0, abi.encodeCall(Target.echo, (3)));
        Multicall3.Result[] memory results = mc.aggregate3Value(calls);
        assertFalse(results[0].success, "allowed failure");
        assertEq(results[0].returnData, revertData("target failed"), "revert data kept");

        calls[0].allowFailure = false;
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.aggregate3Value(calls);
    }

    // ------------------------------------------------------------ getters

    function test_getters() public {
        vm.roll(500);
        vm.warp(1_800_000_000);
        vm.fee(7 gwei);
        vm.coinbase(address(0xC0FFEE));
        vm.prevrandao(bytes32(uint256(1234)));
        vm.chainId(8453);
        vm.deal(address(0xBEEF), 3 ether);

        assertEq(mc.getBlockNumber(), 500, "number");
        assertEq(mc.getCurrentBlockTimestamp(), 1_800_000_000, "timestamp");
        assertEq(mc.getBasefee(), 7 gwei, "basefee");
        assertEq(mc.getCurrentBlockCoinbase(), address(0xC0FFEE), "coinbase");
        assertEq(mc.getCurrentBlockDifficulty(), 1234, "prevrandao");
        assertEq(mc.getCurrentBlockGasLimit(), block.gaslimit, "gas limit");
        assertEq(mc.getChainId(), 8453, "chain id");
        assertEq(mc.getEthBalance(address(0xBEEF)), 3 ether, "balance");
        assertEq(mc.getBlockHash(499), blockhash(499), "block hash");
        assertEq(mc.getLastBlockHash(), blockhash(499), "last block hash");
    }

    function test_getLastBlockHash_atGenesis() public {
        vm.roll(0);
        assertEq(mc.getLastBlockHash(), bytes32(0), "no parent, no revert");
    }

    // ------------------------------------------------------------ placement

    function test_etchedAtCanonicalAddress() public {
        vm.etch(CANONICAL, type(Multicall3).runtimeCode);
        Multicall3 placed = Multicall3(CANONICAL);
        (uint256 blockNumber, bytes[] memory data) = placed.aggregate(twoCalls(false));
        assertEq(blockNumber, 100, "block number");
        assertEq(abi.decode(data[1], (uint256)), 42, "stored");
        assertEq(placed.getChainId(), block.chainid, "getter");
        assertEq(vm.getDeployedCode("Multicall3.sol:Multicall3"), type(Multicall3).runtimeCode, "artifact code");
    }
}
