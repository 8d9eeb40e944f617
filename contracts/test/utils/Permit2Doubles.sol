// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @dev A bare ERC-20 whose `transferFrom` answers the ways real tokens do, to pin down Permit2's
/// solmate-style transfer check: true, false, nothing at all (USDT-style), or a revert.
contract ShapedToken {
    enum Answer {
        True,
        False,
        Nothing,
        Revert
    }

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    Answer public answer;

    function setAnswer(Answer a) external {
        answer = a;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external virtual returns (bool) {
        if (answer == Answer.False) return false;
        if (answer == Answer.Revert) revert("ShapedToken: no");
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        if (answer == Answer.Nothing) {
            assembly {
                return(0, 0)
            }
        }
        return true;
    }
}

/// @dev A token whose EIP-2612 `permit` fails in each way the proxy's try/catch distinguishes, or re-enters
/// a target. `Approve` behaves like a permissive token (no signature check) so settlement can go through.
contract PermitBehaviourToken is ShapedToken {
    enum PermitMode {
        Approve,
        RevertString,
        Panic,
        CustomError,
        Empty,
        Reenter
    }

    error PermitRejected(address owner);

    PermitMode public permitMode;
    address public reentryTarget;
    bytes public reentryCall;

    function setPermitMode(PermitMode m) external {
        permitMode = m;
    }

    function armReentry(address target, bytes calldata data) external {
        permitMode = PermitMode.Reenter;
        reentryTarget = target;
        reentryCall = data;
    }

    function permit(address owner, address spender, uint256 value, uint256, uint8, bytes32, bytes32) external {
        PermitMode m = permitMode;
        if (m == PermitMode.Approve) {
            allowance[owner][spender] = value;
        } else if (m == PermitMode.RevertString) {
            revert("permit: rejected");
        } else if (m == PermitMode.Panic) {
            // Checked arithmetic: underflows for every value, which is the panic under test.
            uint256 bigger = value == type(uint256).max ? value : value + 1;
            allowance[owner][spender] = value - bigger;
        } else if (m == PermitMode.CustomError) {
            revert PermitRejected(owner);
        } else if (m == PermitMode.Empty) {
            assembly {
                revert(0, 0)
            }
        } else {
            (bool ok, bytes memory data) = reentryTarget.call(reentryCall);
            if (!ok) {
                assembly {
                    revert(add(data, 32), mload(data))
                }
            }
        }
    }
}

/// @dev An ERC-1271 wallet that re-enters a target from `isValidSignature` and bubbles its revert, so a
/// reentrancy guard's error surfaces unchanged through Permit2 (which does not catch wallet reverts).
contract ReentrantWallet {
    address public target;
    bytes public call_;

    function arm(address target_, bytes calldata data) external {
        target = target_;
        call_ = data;
    }

    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        (bool ok, bytes memory data) = target.staticcall(call_);
        if (!ok) {
            assembly {
                revert(add(data, 32), mload(data))
            }
        }
        return 0x1626ba7e;
    }
}
