// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISignatureTransfer} from "../src/Permit2.sol";
import {x402BasePermit2Proxy as BaseProxy} from "../src/x402BasePermit2Proxy.sol";
import {x402ExactPermit2Proxy as Proxy} from "../src/x402ExactPermit2Proxy.sol";
import {Permit2ProxySuite} from "./utils/Permit2ProxySuite.sol";

/// @dev The behaviour both proxies share runs from Permit2ProxySuite; here are the hooks and what is exact's own.
contract X402ExactPermit2ProxyTest is Permit2ProxySuite {
    /// @dev Same vector as Permit2Test: viem + @x402/evm 2.27.0 `permit2WitnessTypes`, spender = the proxy.
    bytes32 internal constant SDK_VECTOR_DIGEST = 0x705dd4d54cb3a088e6cb083bb3b4713d1298381f1c1ef8b6a8439c2bd130f577;

    function proxyAddress() internal pure override returns (address) {
        return EXACT_PROXY_ADDRESS;
    }

    function proxyArtifact() internal pure override returns (string memory) {
        return "x402ExactPermit2Proxy.sol:x402ExactPermit2Proxy";
    }

    function proxyRuntimeCode() internal pure override returns (bytes memory) {
        return type(Proxy).runtimeCode;
    }

    /// @dev The exact proxy always moves the whole signed amount.
    function metered(uint256 maximum) internal pure override returns (uint256) {
        return maximum;
    }

    function witnessDigest(ISignatureTransfer.PermitTransferFrom memory p, address spender, PaymentWitness memory w)
        internal
        view
        override
        returns (bytes32)
    {
        return exactWitnessDigest(p, spender, w.to, w.validAfter);
    }

    function settleCall(
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal pure override returns (bytes memory) {
        return abi.encodeCall(Proxy.settle, (p, owner, Proxy.Witness(w.to, w.validAfter), sig));
    }

    function settleWithPermitCall(
        BaseProxy.EIP2612Permit memory pp,
        ISignatureTransfer.PermitTransferFrom memory p,
        address owner,
        PaymentWitness memory w,
        bytes memory sig
    ) internal pure override returns (bytes memory) {
        return abi.encodeCall(Proxy.settleWithPermit, (pp, p, owner, Proxy.Witness(w.to, w.validAfter), sig));
    }

    function test_views() public view {
        Proxy proxy = Proxy(EXACT_PROXY_ADDRESS);
        assertEq(proxy.WITNESS_TYPE_STRING(), EXACT_WITNESS_TYPE_STRING, "type string");
        assertEq(proxy.WITNESS_TYPEHASH(), EXACT_WITNESS_TYPEHASH, "typehash");
    }

    function test_settle_sdkVector() public {
        ISignatureTransfer.PermitTransferFrom memory p;
        p.permitted = ISignatureTransfer.TokenPermissions(BASE_USDC, 1234567);
        p.nonce = 0xdeadbeefcafebabe0123456789abcdef0123456789abcdef0123456789abcdef;
        p.deadline = 1700003600;
        PaymentWitness memory w = PaymentWitness(carol, relayer, 1699999000);
        assertEq(witnessDigest(p, EXACT_PROXY_ADDRESS, w), SDK_VECTOR_DIGEST, "digest");

        settle(p, alice, w, packed(alicePk, SDK_VECTOR_DIGEST));
        assertEq(usdc.balanceOf(carol), 1234567, "paid");
    }

    /// @dev Nothing about the payment is the submitter's to choose, so anyone may submit it.
    function test_settle_anySubmitter() public {
        ISignatureTransfer.PermitTransferFrom memory p = newPermit(BASE_USDC, 1e6);
        PaymentWitness memory w = PaymentWitness(carol, address(0xBEEF), block.timestamp);
        settle(p, alice, w, signed(alicePk, p, w));
        assertEq(usdc.balanceOf(carol), 1e6, "paid");
    }
}
