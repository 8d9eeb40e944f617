// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title PayoutSplitter
/// @notice A marketplace's x402 `payTo`: the buyer's EIP-3009 authorization pays this contract, and
/// `distribute` in the same transaction (one Multicall3 `aggregate3` with `allowFailure: false`) passes
/// the whole balance on to fixed payees by basis points, so every payee is credited or none is.
///
/// Rounding rule: for a balance B and shares s_i in basis points (the s_i sum to 10,000), payee i gets
/// floor(B * s_i / 10,000). The remainder B - sum_i floor(B * s_i / 10,000), always less than the number
/// of payees, goes to the first payee on top of its own part. Every unit of B is paid out and nothing
/// stays in the contract.
///
/// @dev Anyone may call `distribute`: it can only ever send to the fixed payees. No reentrancy guard is
/// needed for the same reason: a payee re-entering mid-loop can only pay out what is left to the same
/// payees, after which the outer call runs short of balance and the whole transaction reverts.
/// Deploy it with its constructor; the configuration is not in the runtime code, so placing that code
/// with `anvil_setCode` gives a splitter with nothing to read.
contract PayoutSplitter {
    using SafeERC20 for IERC20;

    uint256 public constant TOTAL_SHARES = 10_000;
    /// @dev Bounds the gas of a distribution, which must fit in a facilitator's batch.
    uint256 public constant MAX_PAYEES = 32;

    /// @dev Per-payee amounts are already the token's own Transfer logs; repeating them would only cost gas.
    event Distributed(address indexed token, uint256 amount);

    /// @dev The configuration is the code of a data contract the constructor writes once, one word per
    /// payee, `share << 160 | payee`: a distribution reads it with one cold EXTCODECOPY instead of a cold
    /// SLOAD per payee.
    address private immutable _config;
    uint256 private immutable _count;

    constructor(address[] memory payees_, uint16[] memory shares_) {
        uint256 n = payees_.length;
        require(n != 0, "PayoutSplitter: no payees");
        require(shares_.length == n, "PayoutSplitter: payees and shares length mismatch");
        require(n <= MAX_PAYEES, "PayoutSplitter: too many payees");
        uint256[] memory entries = new uint256[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            address payee = payees_[i];
            uint256 share = shares_[i];
            require(payee != address(0), "PayoutSplitter: payee is the zero address");
            require(share != 0, "PayoutSplitter: share is zero");
            for (uint256 j; j < i; ++j) {
                require(payees_[j] != payee, "PayoutSplitter: duplicate payee");
            }
            total += share;
            entries[i] = share << 160 | uint160(payee);
        }
        require(total == TOTAL_SHARES, "PayoutSplitter: shares must sum to 10000");
        _count = n;
        _config = _write(entries);
    }

    /// @notice Pays the splitter's whole balance of `token` to the payees by the rounding rule above.
    /// @dev A zero balance is a no-op (no transfer, no event) rather than an error: a batch that settles
    /// several payments to this splitter may distribute more than once, and under `allowFailure: false`
    /// a revert there would undo every payment in it. A payee whose part rounds to zero is not sent
    /// anything, since some tokens reject zero-value transfers.
    /// @return amount What was distributed.
    function distribute(address token) external returns (uint256 amount) {
        amount = IERC20(token).balanceOf(address(this));
        if (amount == 0) return 0;
        uint256[] memory entries = _entries();
        uint256[] memory parts = _split(entries, amount);
        for (uint256 i; i < entries.length; ++i) {
            if (parts[i] != 0) IERC20(token).safeTransfer(address(uint160(entries[i])), parts[i]);
        }
        emit Distributed(token, amount);
    }

    /// @notice What each payee, in `payees()` order, would get from a distribution of `amount`.
    function quote(uint256 amount) external view returns (uint256[] memory) {
        return _split(_entries(), amount);
    }

    function payees() external view returns (address[] memory list) {
        uint256[] memory entries = _entries();
        list = new address[](entries.length);
        for (uint256 i; i < entries.length; ++i) {
            list[i] = address(uint160(entries[i]));
        }
    }

    function shares() external view returns (uint16[] memory list) {
        uint256[] memory entries = _entries();
        list = new uint16[](entries.length);
        for (uint256 i; i < entries.length; ++i) {
            list[i] = uint16(entries[i] >> 160);
        }
    }

    /// @dev With amount = q * 10,000 + r, floor(amount * s / 10,000) = q * s + floor(r * s / 10,000)
    /// exactly, and neither product can exceed `amount`: any balance splits without overflow or mulDiv.
    /// Payee 0 takes what the others leave, which is its own floor part plus the remainder.
    function _split(uint256[] memory entries, uint256 amount) private pure returns (uint256[] memory parts) {
        uint256 n = entries.length;
        parts = new uint256[](n);
        uint256 q = amount / TOTAL_SHARES;
        uint256 r = amount % TOTAL_SHARES;
        uint256 rest = amount;
        unchecked {
            for (uint256 i = 1; i < n; ++i) {
                uint256 share = entries[i] >> 160;
                uint256 part = q * share + r * share / TOTAL_SHARES;
                parts[i] = part;
                rest -= part;
            }
        }
        parts[0] = rest;
    }

    function _entries() private view returns (uint256[] memory entries) {
        uint256 n = _count;
        address config = _config;
        entries = new uint256[](n);
        assembly ("memory-safe") {
            extcodecopy(config, add(entries, 0x20), 1, shl(5, n))
        }
    }

    /// @dev The data contract's code starts with STOP so a call to it can never run the data as code.
    /// Its init code is a 10-byte prefix (PUSH2 size, DUP1, PUSH1 10, RETURNDATASIZE, CODECOPY,
    /// RETURNDATASIZE, RETURN) that returns whatever follows it.
    function _write(uint256[] memory entries) private returns (address config) {
        bytes memory code = abi.encodePacked(hex"00", entries);
        bytes memory init = abi.encodePacked(hex"61", uint16(code.length), hex"80600a3d393df3", code);
        assembly ("memory-safe") {
            config := create(0, add(init, 0x20), mload(init))
        }
        require(config != address(0), "PayoutSplitter: config write failed");
    }
}
