// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @dev The cheatcodes these tests use, declared here because the machine has no forge-std.
/// Signatures must match forge's exactly: the selector is all it dispatches on.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    // environment
    function warp(uint256 newTimestamp) external;
    function roll(uint256 newHeight) external;
    function chainId(uint256 newChainId) external;
    function fee(uint256 newBasefee) external;
    function coinbase(address newCoinbase) external;
    function prevrandao(bytes32 newPrevrandao) external;
    function deal(address account, uint256 newBalance) external;
    function etch(address target, bytes calldata newRuntimeBytecode) external;
    function getDeployedCode(string calldata artifactPath) external view returns (bytes memory runtimeBytecode);
    function load(address target, bytes32 slot) external view returns (bytes32 data);

    // callers
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;

    // keys
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);

    // expectations
    function expectRevert(bytes calldata revertData) external;
    function expectRevert() external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
    function assume(bool condition) external pure;

    // logs, for asserting that nothing was emitted
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);

    // messages
    function toString(uint256 value) external pure returns (string memory);
    function toString(address value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
}
