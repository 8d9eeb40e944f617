// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Multicall3} from "../src/Multicall3.sol";
import {PayoutSplitter} from "../src/PayoutSplitter.sol";
import {USDCFixture} from "./utils/USDCFixture.sol";
import {Vm} from "./utils/Vm.sol";

/// @dev Answers `false` instead of reverting, as some older tokens do: only SafeERC20 notices.
contract FalseReturningToken {
    function balanceOf(address) external pure returns (uint256) {
        return 100;
    }

    function transfer(address, uint256) external pure returns (bool) {
        return false;
    }
}

/// @dev USDT-style: `transfer` returns nothing, which a plain IERC20 call would fail to decode.
contract NoReturnToken {
    mapping(address => uint256) public balanceOf;

    function mint(address to, uint256 value) external {
        balanceOf[to] += value;
    }

    function transfer(address to, uint256 value) external {
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
    }
}

abstract contract SplitterFixture is USDCFixture {
    bytes4 internal constant TRANSFER_WITH_AUTHORIZATION_BYTES =
        bytes4(keccak256("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"));

    address internal market = address(0x3A4E7);
    address internal seller = address(0x5E11E4);

    Multicall3 internal mc;

    function setUp() public virtual override {
        super.setUp();
        mc = new Multicall3();
    }

    function twoWay() internal returns (PayoutSplitter) {
        address[] memory p = new address[](2);
        (p[0], p[1]) = (market, seller);
        uint16[] memory s = new uint16[](2);
        (s[0], s[1]) = (1_000, 9_000);
        return new PayoutSplitter(p, s);
    }

    function fiveWay() internal returns (PayoutSplitter) {
        (address[] memory p, uint16[] memory s) = fiveWayConfig();
        return new PayoutSplitter(p, s);
    }

    function fiveWayConfig() internal view returns (address[] memory p, uint16[] memory s) {
        p = new address[](5);
        (p[0], p[1], p[2], p[3], p[4]) = (market, seller, address(0xA1), address(0xA2), address(0xA3));
        s = new uint16[](5);
        (s[0], s[1], s[2], s[3], s[4]) = (500, 6_000, 2_000, 1_000, 500);
    }

    function fund(address to, uint256 amount) internal {
        if (amount == 0) return; // FiatToken refuses to mint nothing
        vm.prank(admin);
        usdc.mint(to, amount);
    }

    function balancesOf(address[] memory accounts) internal view returns (uint256[] memory b) {
        b = new uint256[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            b[i] = usdc.balanceOf(accounts[i]);
        }
    }

    /// @dev What the facilitator sends: the buyer's authorization paying the splitter, then the payout,
    /// with no failure allowed, so the batch lands whole or not at all.
    function settleAndDistribute(PayoutSplitter sp, Auth memory a, bytes memory sig)
        internal
        view
        returns (Multicall3.Call3[] memory calls)
    {
        calls = new Multicall3.Call3[](2);
        calls[0] = Multicall3.Call3(
            address(usdc),
            false,
            abi.encodeWithSelector(
                TRANSFER_WITH_AUTHORIZATION_BYTES, a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig
            )
        );
        calls[1] = Multicall3.Call3(address(sp), false, abi.encodeCall(PayoutSplitter.distribute, (address(usdc))));
    }
}

contract PayoutSplitterTest is SplitterFixture {
    // ------------------------------------------------------------ configuration

    function test_views_returnConfiguration() public {
        PayoutSplitter sp = fiveWay();
        (address[] memory p, uint16[] memory s) = fiveWayConfig();
        address[] memory gotPayees = sp.payees();
        uint16[] memory gotShares = sp.shares();
        assertEq(gotPayees.length, 5, "payee count");
        assertEq(gotShares.length, 5, "share count");
        for (uint256 i; i < 5; ++i) {
            assertEq(gotPayees[i], p[i], "payee, in constructor order");
            assertEq(gotShares[i], s[i], "share, in constructor order");
        }
        assertEq(sp.TOTAL_SHARES(), 10_000, "basis points");
        assertEq(sp.MAX_PAYEES(), 32, "max payees");
    }

    function test_singlePayee_getsEverything() public {
        address[] memory p = new address[](1);
        p[0] = seller;
        uint16[] memory s = new uint16[](1);
        s[0] = 10_000;
        PayoutSplitter sp = new PayoutSplitter(p, s);
        fund(address(sp), 777);
        sp.distribute(address(usdc));
        assertEq(usdc.balanceOf(seller), 777, "all of it");
    }

    function test_maxPayees_accepted() public {
        (address[] memory p, uint16[] memory s) = evenConfig(32);
        PayoutSplitter sp = new PayoutSplitter(p, s);
        assertEq(sp.payees().length, 32, "32 payees");
        fund(address(sp), 1_000_003);
        sp.distribute(address(usdc));
        // 10,000 / 32 does not divide evenly, so the shares are 313 x 16 and 312 x 16.
        // Every floor part is 100 x share, so the 3 odd units are the remainder.
        assertEq(usdc.balanceOf(p[0]), 31_300 + 3, "first: floor part plus remainder");
        assertEq(usdc.balanceOf(p[31]), 31_200, "last: floor part");
        assertEq(usdc.balanceOf(address(sp)), 0, "nothing left");
    }

    // ------------------------------------------------------------ constructor rejections

    function test_constructor_rejectsEmpty() public {
        vm.expectRevert(bytes("PayoutSplitter: no payees"));
        new PayoutSplitter(new address[](0), new uint16[](0));
    }

    function test_constructor_rejectsLengthMismatch() public {
        (address[] memory p,) = fiveWayConfig();
        vm.expectRevert(bytes("PayoutSplitter: payees and shares length mismatch"));
        new PayoutSplitter(p, new uint16[](4));
    }

    function test_constructor_rejectsTooMany() public {
        (address[] memory p, uint16[] memory s) = evenConfig(33);
        vm.expectRevert(bytes("PayoutSplitter: too many payees"));
        new PayoutSplitter(p, s);
    }

    function test_constructor_rejectsZeroAddress() public {
        (address[] memory p, uint16[] memory s) = fiveWayConfig();
        p[3] = address(0);
        vm.expectRevert(bytes("PayoutSplitter: payee is the zero address"));
        new PayoutSplitter(p, s);
    }

    function test_constructor_rejectsZeroShare() public {
        (address[] memory p, uint16[] memory s) = fiveWayConfig();
        (s[3], s[4]) = (0, 1_500);
        vm.expectRevert(bytes("PayoutSplitter: share is zero"));
        new PayoutSplitter(p, s);
    }

    function test_constructor_rejectsDuplicate() public {
        (address[] memory p, uint16[] memory s) = fiveWayConfig();
        p[4] = p[1]; // not adjacent
        vm.expectRevert(bytes("PayoutSplitter: duplicate payee"));
        new PayoutSplitter(p, s);
    }

    function test_constructor_rejectsWrongSum() public {
        (address[] memory p, uint16[] memory s) = fiveWayConfig();
        s[4] = 499;
        vm.expectRevert(bytes("PayoutSplitter: shares must sum to 10000"));
        new PayoutSplitter(p, s);
        s[4] = 501;
        vm.expectRevert(bytes("PayoutSplitter: shares must sum to 10000"));
        new PayoutSplitter(p, s);
        // One share alone past 10,000 is caught by the same check.
        (s[0], s[1], s[2], s[3], s[4]) = (type(uint16).max, 1, 1, 1, 1);
        vm.expectRevert(bytes("PayoutSplitter: shares must sum to 10000"));
        new PayoutSplitter(p, s);
    }

    // ------------------------------------------------------------ distribute: exact and rounded

    function test_distribute_roundAmount_exactShares() public {
        PayoutSplitter sp = fiveWay();
        (address[] memory p,) = fiveWayConfig();
        fund(address(sp), 100e6);

        vm.expectEmit(true, false, false, true, address(sp));
        emit PayoutSplitter.Distributed(address(usdc), 100e6);
        uint256 amount = sp.distribute(address(usdc));

        assertEq(amount, 100e6, "returned amount");
        assertEq(usdc.balanceOf(p[0]), 5e6, "5%");
        assertEq(usdc.balanceOf(p[1]), 60e6, "60%");
        assertEq(usdc.balanceOf(p[2]), 20e6, "20%");
        assertEq(usdc.balanceOf(p[3]), 10e6, "10%");
        assertEq(usdc.balanceOf(p[4]), 5e6, "5%");
        assertEq(usdc.balanceOf(address(sp)), 0, "nothing left");
    }

    function test_distribute_remainderGoesToFirstPayee() public {
        address[] memory p = new address[](3);
        (p[0], p[1], p[2]) = (market, seller, bob);
        uint16[] memory s = new uint16[](3);
        (s[0], s[1], s[2]) = (3_334, 3_333, 3_333);
        PayoutSplitter sp = new PayoutSplitter(p, s);

        // 0.010001 USDC: floors 3,334 + 3,333 + 3,333 = 10,000, remainder 1 to the first payee.
        fund(address(sp), 10_001);
        sp.distribute(address(usdc));
        assertEq(usdc.balanceOf(market), 3_335, "first: 3,334 + remainder 1");
        assertEq(usdc.balanceOf(seller), 3_333, "second: floor");
        assertEq(usdc.balanceOf(bob), 3_333, "third: floor");

        // 2 units: every floor part is zero, so the first payee takes both and the others get no call.
        fund(address(sp), 2);
        vm.recordLogs();
        sp.distribute(address(usdc));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 2, "one Transfer, one Distributed");
        assertEq(logs[0].topics[0], IERC20.Transfer.selector, "a Transfer");
        assertEq(address(uint160(uint256(logs[0].topics[2]))), market, "to the first payee");
        assertEq(usdc.balanceOf(market), 3_337, "first took both units");
        assertEq(usdc.balanceOf(seller), 3_333, "second unchanged");
        assertEq(usdc.balanceOf(address(sp)), 0, "nothing left");
    }

    function test_distribute_anyoneMayCall() public {
        PayoutSplitter sp = twoWay();
        fund(address(sp), 10e6);
        vm.prank(address(0xBAD));
        sp.distribute(address(usdc));
        assertEq(usdc.balanceOf(market), 1e6, "market");
        assertEq(usdc.balanceOf(seller), 9e6, "seller");
        assertEq(usdc.balanceOf(address(0xBAD)), 0, "caller gets nothing");
    }

    function test_distribute_zeroBalance_isNoop() public {
        PayoutSplitter sp = twoWay();
        vm.recordLogs();
        uint256 amount = sp.distribute(address(usdc));
        assertEq(amount, 0, "nothing distributed");
        assertEq(vm.getRecordedLogs().length, 0, "no transfer, no event");
    }

    // ------------------------------------------------------------ fuzz: the rounding rule

    /// @dev USDC-sized amounts (up to 10^6 USDC), where the remainder is a visible share of the total.
    function testFuzz_distribute_roundingRule_usdcAmounts(uint256 amount, uint256 count, uint256 seed) public {
        checkRule(bound(amount, 0, 1e12), bound(count, 1, 32), seed);
    }

    /// @dev The whole uint256 range: the split must neither overflow nor lose a unit.
    function testFuzz_distribute_roundingRule_anyAmount(uint256 amount, uint256 count, uint256 seed) public {
        checkRule(bound(amount, 0, type(uint256).max - ALICE_FUNDS), bound(count, 1, 32), seed);
    }

    function testFuzz_quote_matchesRule(uint256 amount, uint256 count, uint256 seed) public {
        (address[] memory p, uint16[] memory s) = randomConfig(bound(count, 1, 32), seed);
        PayoutSplitter sp = new PayoutSplitter(p, s);
        uint256[] memory parts = sp.quote(amount);
        uint256[] memory floors = floorParts(amount, s);
        uint256 remainder = amount - sum(floors);
        assertTrue(remainder < p.length, "remainder below payee count");
        assertEq(parts[0], floors[0] + remainder, "first payee: floor part plus remainder");
        for (uint256 i = 1; i < p.length; ++i) {
            assertEq(parts[i], floors[i], "other payees: floor part");
        }
    }

    function checkRule(uint256 amount, uint256 n, uint256 seed) internal {
        (address[] memory p, uint16[] memory s) = randomConfig(n, seed);
        PayoutSplitter sp = new PayoutSplitter(p, s);
        fund(address(sp), amount);
        uint256[] memory quoted = sp.quote(amount);

        sp.distribute(address(usdc));

        uint256[] memory got = balancesOf(p);
        uint256[] memory floors = floorParts(amount, s);
        uint256 remainder = amount - sum(floors);
        assertTrue(remainder < n, "remainder below payee count");
        assertEq(got[0], floors[0] + remainder, "first payee: floor part plus remainder");
        for (uint256 i = 1; i < n; ++i) {
            assertEq(got[i], floors[i], "other payees: floor part");
        }
        for (uint256 i; i < n; ++i) {
            assertEq(quoted[i], got[i], "quote equals payout");
        }
        assertEq(sum(got), amount, "total out equals total in");
        assertEq(usdc.balanceOf(address(sp)), 0, "nothing left");
    }

    // ------------------------------------------------------------ end to end with EIP-3009

    function test_endToEnd_authorizationAndDistribute_inOneMulticall() public {
        PayoutSplitter sp = fiveWay();
        (address[] memory p,) = fiveWayConfig();
        uint256 price = 1_234_567; // 1.234567 USDC: no part is exact, remainder 2
        Auth memory a = newAuth(alice, address(sp), price);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));

        vm.expectEmit(true, true, false, true, address(usdc));
        emit IERC20.Transfer(alice, address(sp), price);
        vm.expectEmit(true, false, false, true, address(sp));
        emit PayoutSplitter.Distributed(address(usdc), price);
        vm.prank(relayer);
        mc.aggregate3(settleAndDistribute(sp, a, sig));

        uint256[] memory got = balancesOf(p);
        assertEq(got[0], 61_728 + 2, "5%, plus remainder");
        assertEq(got[1], 740_740, "60%");
        assertEq(got[2], 246_913, "20%");
        assertEq(got[3], 123_456, "10%");
        assertEq(got[4], 61_728, "5%");
        assertEq(sum(got), price, "total out equals total in");
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - price, "buyer charged once");
        assertEq(usdc.balanceOf(address(sp)), 0, "nothing left");
        assertEq(usdc.balanceOf(address(mc)), 0, "nothing in Multicall3");
        assertTrue(usdc.authorizationState(alice, a.nonce), "authorization used");
    }

    function test_endToEnd_repeatedDistributeInOneBatch_isHarmless() public {
        PayoutSplitter sp = twoWay();
        Auth memory a = newAuth(alice, address(sp), 10e6);
        Multicall3.Call3[] memory pair = settleAndDistribute(sp, a, packed(alicePk, authDigest(TRANSFER_TYPEHASH, a)));
        Multicall3.Call3[] memory calls = new Multicall3.Call3[](3);
        (calls[0], calls[1], calls[2]) = (pair[0], pair[1], pair[1]);
        mc.aggregate3(calls);
        assertEq(usdc.balanceOf(market), 1e6, "market paid once");
        assertEq(usdc.balanceOf(seller), 9e6, "seller paid once");
    }

    // ------------------------------------------------------------ failures

    function test_blacklistedPayee_revertsAndNothingMoves() public {
        PayoutSplitter sp = fiveWay();
        (address[] memory p,) = fiveWayConfig();
        fund(address(sp), 50e6);
        vm.prank(admin);
        usdc.blacklist(p[3]);

        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        sp.distribute(address(usdc));

        uint256[] memory got = balancesOf(p);
        assertEq(sum(got), 0, "no payee credited, not even those before it");
        assertEq(usdc.balanceOf(address(sp)), 50e6, "funds stay in the splitter");
    }

    function test_blacklistedPayee_failsTheWholeBatch() public {
        PayoutSplitter sp = fiveWay();
        (address[] memory p,) = fiveWayConfig();
        Auth memory a = newAuth(alice, address(sp), 3e6);
        bytes memory sig = packed(alicePk, authDigest(TRANSFER_TYPEHASH, a));
        vm.prank(admin);
        usdc.blacklist(p[4]);

        vm.prank(relayer);
        vm.expectRevert(bytes("Multicall3: call failed"));
        mc.aggregate3(settleAndDistribute(sp, a, sig));
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS, "buyer not charged");
        assertEq(usdc.balanceOf(address(sp)), 0, "splitter not paid");
        assertEq(sum(balancesOf(p)), 0, "no payee credited");
        assertFalse(usdc.authorizationState(alice, a.nonce), "authorization still unused");

        // Once the payee is cleared, the very same authorization settles.
        vm.prank(admin);
        usdc.unBlacklist(p[4]);
        mc.aggregate3(settleAndDistribute(sp, a, sig));
        assertEq(sum(balancesOf(p)), 3e6, "all credited");
    }

    function test_tokenReturningFalse_reverts() public {
        PayoutSplitter sp = twoWay();
        FalseReturningToken token = new FalseReturningToken();
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        sp.distribute(address(token));
    }

    function test_tokenWithoutReturnValue_distributes() public {
        PayoutSplitter sp = twoWay();
        NoReturnToken token = new NoReturnToken();
        token.mint(address(sp), 1_000);
        sp.distribute(address(token));
        assertEq(token.balanceOf(market), 100, "market");
        assertEq(token.balanceOf(seller), 900, "seller");
        assertEq(token.balanceOf(address(sp)), 0, "nothing left");
    }

    // ------------------------------------------------------------ helpers

    /// @dev The reference: full-precision mulDiv, a different computation from the contract's.
    function floorParts(uint256 amount, uint16[] memory s) internal pure returns (uint256[] memory f) {
        f = new uint256[](s.length);
        for (uint256 i; i < s.length; ++i) {
            f[i] = Math.mulDiv(amount, s[i], 10_000);
        }
    }

    function sum(uint256[] memory xs) internal pure returns (uint256 total) {
        for (uint256 i; i < xs.length; ++i) {
            total += xs[i];
        }
    }

    function payeeAt(uint256 seed, uint256 i) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("payee", seed, i)))));
    }

    /// @dev Shares from n - 1 sorted cut points in [0, 10,000 - n], each gap plus one: any composition
    /// of 10,000 into n positive parts can come out, not just ones skewed to the first payee.
    function randomConfig(uint256 n, uint256 seed) internal pure returns (address[] memory p, uint16[] memory s) {
        p = new address[](n);
        s = new uint16[](n);
        uint256[] memory cuts = new uint256[](n + 1);
        cuts[n] = 10_000 - n;
        for (uint256 i = 1; i < n; ++i) {
            uint256 c = uint256(keccak256(abi.encode("cut", seed, i))) % (10_001 - n);
            uint256 j = i;
            while (j > 1 && cuts[j - 1] > c) {
                cuts[j] = cuts[j - 1];
                --j;
            }
            cuts[j] = c;
        }
        for (uint256 i; i < n; ++i) {
            p[i] = payeeAt(seed, i);
            s[i] = uint16(cuts[i + 1] - cuts[i] + 1);
        }
    }

    /// @dev 10,000 over n: the first 10,000 mod n payees get one more basis point.
    function evenConfig(uint256 n) internal pure returns (address[] memory p, uint16[] memory s) {
        p = new address[](n);
        s = new uint16[](n);
        for (uint256 i; i < n; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) n is at most 33, far inside 160 bits
            p[i] = address(uint160(0x1000 + i));
            // forge-lint: disable-next-line(unsafe-typecast) at most 10,000, inside 16 bits
            s[i] = uint16(10_000 / n + (i < 10_000 % n ? 1 : 0));
        }
    }
}

/// @dev One distribution per test, for `forge test --gas-report` and traces. Payees already hold USDC,
/// as they do after the first paid request, so the figures are the steady state of the payout scenario.
contract PayoutSplitterGasTest is SplitterFixture {
    PayoutSplitter internal two;
    PayoutSplitter internal five;

    function setUp() public override {
        super.setUp();
        two = twoWay();
        five = fiveWay();
        (address[] memory p,) = fiveWayConfig();
        for (uint256 i; i < p.length; ++i) {
            fund(p[i], 1);
        }
        fund(address(two), 1_234_567);
        fund(address(five), 1_234_567);
    }

    function test_gas_distribute_2payees() public {
        two.distribute(address(usdc));
    }

    function test_gas_distribute_5payees() public {
        five.distribute(address(usdc));
    }

    /// @dev The facilitator's real batch: authorization then distribution, USDC already warm.
    function test_gas_batch_2payees() public {
        Auth memory a = newAuth(alice, address(two), 1e6);
        mc.aggregate3(settleAndDistribute(two, a, packed(alicePk, authDigest(TRANSFER_TYPEHASH, a))));
    }

    function test_gas_batch_5payees() public {
        Auth memory a = newAuth(alice, address(five), 1e6);
        mc.aggregate3(settleAndDistribute(five, a, packed(alicePk, authDigest(TRANSFER_TYPEHASH, a))));
    }
}
