// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title MockUSDC
/// @notice A stand-in for Circle's FiatToken v2.2 (USDC) for local devnets: same ABI for what x402 and
/// its tooling touch (EIP-3009, EIP-2612, the minter/pauser/blacklister roles) and the same revert
/// strings, because facilitators classify failures by matching that text.
/// @dev The runtime code is meant to be placed with `anvil_setCode` at Base's USDC address, where no
/// constructor runs. So nothing may live in the constructor that the runtime needs: symbol and version
/// are constants, the name is Base's unless `initializeV2` gives another network's, roles come from
/// `initialize`, and the EIP-712 domain is derived from
/// `address(this)` and `block.chainid` on every use. It deliberately uses no immutables, since tooling
/// that copies `deployedBytecode` out of the build artifact gets their slots zero-filled.
contract MockUSDC is ERC20 {
    // ---------------------------------------------------------------- EIP-712 / EIP-3009 / EIP-2612

    bytes32 private constant _EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _NAME_HASH = keccak256("USD Coin");
    bytes32 private constant _VERSION_HASH = keccak256("2");

    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    // ---------------------------------------------------------------- storage

    address private _owner;
    address private _masterMinter;
    address private _pauser;
    address private _blacklister;
    bool private _paused;
    bool private _initialized;

    mapping(address => bool) private _blacklisted;
    mapping(address => bool) private _minters;
    mapping(address => uint256) private _minterAllowed;
    mapping(address => mapping(bytes32 => bool)) private _authorizationStates;
    mapping(address => uint256) private _permitNonces;
    /// @dev Last, so no earlier slot moves. Empty means Base's name; `initializeV2` sets another network's
    /// (Base Sepolia's USDC is named "USDC"), so the same code serves both.
    string private _initializedName;

    // ---------------------------------------------------------------- events (FiatToken signatures)

    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
    event Mint(address indexed minter, address indexed to, uint256 amount);
    event Burn(address indexed burner, uint256 amount);
    event MinterConfigured(address indexed minter, uint256 minterAllowedAmount);
    event MinterRemoved(address indexed oldMinter);
    event MasterMinterChanged(address indexed newMasterMinter);
    event Pause();
    event Unpause();
    event PauserChanged(address indexed newAddress);
    event Blacklisted(address indexed _account);
    event UnBlacklisted(address indexed _account);
    event BlacklisterChanged(address indexed newBlacklister);
    // Unindexed, as in FiatToken's Ownable: indexing would change the log layout tooling decodes.
    event OwnershipTransferred(address previousOwner, address newOwner);

    // ---------------------------------------------------------------- modifiers

    modifier onlyOwner() {
        require(msg.sender == _owner, "Ownable: caller is not the owner");
        _;
    }

    modifier onlyMasterMinter() {
        require(msg.sender == _masterMinter, "FiatToken: caller is not the masterMinter");
        _;
    }

    modifier onlyMinters() {
        require(_minters[msg.sender], "FiatToken: caller is not a minter");
        _;
    }

    modifier onlyPauser() {
        require(msg.sender == _pauser, "Pausable: caller is not the pauser");
        _;
    }

    modifier onlyBlacklister() {
        require(msg.sender == _blacklister, "Blacklistable: caller is not the blacklister");
        _;
    }

    modifier whenNotPaused() {
        require(!_paused, "Pausable: paused");
        _;
    }

    modifier notBlacklisted(address account) {
        _requireNotBlacklisted(account);
        _;
    }

    // ---------------------------------------------------------------- setup

    /// @dev Empty strings to OZ: name and symbol are overridden as constants, so storing them is waste.
    constructor(address admin) ERC20("", "") {
        _initialize(admin, admin, admin, admin);
    }

    /// @notice One-shot setup for storage that never saw the constructor (code placed by `anvil_setCode`).
    function initialize(address newOwner, address newMasterMinter, address newPauser, address newBlacklister) external {
        _initialize(newOwner, newMasterMinter, newPauser, newBlacklister);
    }

    /// @notice FiatToken v2's rename, once, after `initialize`: the EIP-712 domain follows the new name.
    function initializeV2(string calldata newName) external {
        require(_initialized && bytes(_initializedName).length == 0, "FiatToken: contract is already initialized");
        require(bytes(newName).length > 0, "FiatToken: name is empty");
        _initializedName = newName;
    }

    function _initialize(address newOwner, address newMasterMinter, address newPauser, address newBlacklister) private {
        require(!_initialized, "FiatToken: contract is already initialized");
        require(newMasterMinter != address(0), "FiatToken: new masterMinter is the zero address");
        require(newPauser != address(0), "FiatToken: new pauser is the zero address");
        require(newBlacklister != address(0), "FiatToken: new blacklister is the zero address");
        require(newOwner != address(0), "FiatToken: new owner is the zero address");
        _initialized = true;
        _owner = newOwner;
        _masterMinter = newMasterMinter;
        _pauser = newPauser;
        _blacklister = newBlacklister;
        // FiatToken v2.1+ blacklists itself so tokens sent to the token contract bounce, as on Base.
        _blacklisted[address(this)] = true;
        emit OwnershipTransferred(address(0), newOwner);
        emit MasterMinterChanged(newMasterMinter);
        emit PauserChanged(newPauser);
        emit BlacklisterChanged(newBlacklister);
        emit Blacklisted(address(this));
    }

    // ---------------------------------------------------------------- metadata

    function name() public view override returns (string memory) {
        return bytes(_initializedName).length == 0 ? "USD Coin" : _initializedName;
    }

    function symbol() public pure override returns (string memory) {
        return "USDC";
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function currency() external pure returns (string memory) {
        return "USD";
    }

    function version() external pure returns (string memory) {
        return "2";
    }

    /// @dev Upper-case because EIP-2612 fixes the name; permit signers read it.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        bytes32 nameHash = bytes(_initializedName).length == 0 ? _NAME_HASH : keccak256(bytes(_initializedName));
        return keccak256(abi.encode(_EIP712_DOMAIN_TYPEHASH, nameHash, _VERSION_HASH, block.chainid, address(this)));
    }

    // ---------------------------------------------------------------- ERC-20 with FiatToken guards

    function transfer(address to, uint256 value)
        public
        override
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(to)
        returns (bool)
    {
        _move(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value)
        public
        override
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(from)
        notBlacklisted(to)
        returns (bool)
    {
        uint256 allowed = allowance(from, msg.sender);
        require(value <= allowed, "ERC20: transfer amount exceeds allowance");
        _move(from, to, value);
        // FiatToken has no "infinite" allowance: it always decrements, and without an Approval event.
        unchecked {
            _approve(from, msg.sender, allowed - value, false);
        }
        return true;
    }

    function approve(address spender, uint256 value)
        public
        override
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(spender)
        returns (bool)
    {
        _approve(msg.sender, spender, value);
        return true;
    }

    /// @dev Covers approve, permit and transferFrom's decrement alike, with FiatToken's strings.
    function _approve(address owner_, address spender, uint256 value, bool emitEvent) internal override {
        require(owner_ != address(0), "ERC20: approve from the zero address");
        require(spender != address(0), "ERC20: approve to the zero address");
        super._approve(owner_, spender, value, emitEvent);
    }

    /// @dev Every balance move funnels here so the FiatToken strings win over OZ's custom errors.
    function _move(address from, address to, uint256 value) private {
        require(from != address(0), "ERC20: transfer from the zero address");
        require(to != address(0), "ERC20: transfer to the zero address");
        require(value <= balanceOf(from), "ERC20: transfer amount exceeds balance");
        _transfer(from, to, value);
    }

    // ---------------------------------------------------------------- EIP-3009

    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _requireTransferable(from, to);
        bytes32 digest = _validAuthorizationDigest(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, digest, v, r, s);
        _useAuthorizationAndMove(from, to, value, nonce);
    }

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        _requireTransferable(from, to);
        bytes32 digest = _validAuthorizationDigest(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, digest, signature);
        _useAuthorizationAndMove(from, to, value, nonce);
    }

    /// @dev The payee check stops front-running: anyone watching the mempool could otherwise submit a
    /// transfer authorization meant to be consumed atomically by the payee contract.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _requireTransferable(from, to);
        require(to == msg.sender, "FiatTokenV2: caller must be the payee");
        bytes32 digest = _validAuthorizationDigest(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, digest, v, r, s);
        _useAuthorizationAndMove(from, to, value, nonce);
    }

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        _requireTransferable(from, to);
        require(to == msg.sender, "FiatTokenV2: caller must be the payee");
        bytes32 digest = _validAuthorizationDigest(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, digest, signature);
        _useAuthorizationAndMove(from, to, value, nonce);
    }

    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
    {
        bytes32 digest = _validCancelDigest(authorizer, nonce);
        _requireValidSignature(authorizer, digest, v, r, s);
        _cancel(authorizer, nonce);
    }

    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature) external whenNotPaused {
        bytes32 digest = _validCancelDigest(authorizer, nonce);
        _requireValidSignature(authorizer, digest, signature);
        _cancel(authorizer, nonce);
    }

    function _requireTransferable(address from, address to) private view {
        require(!_paused, "Pausable: paused");
        _requireNotBlacklisted(from);
        _requireNotBlacklisted(to);
    }

    /// @dev Checks run in FiatToken's order (window, then nonce, then signature) so that the first
    /// failing reason, and thus the facilitator's error code, matches real USDC.
    function _validAuthorizationDigest(
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) private view returns (bytes32) {
        // EIP-3009 defines the window in block time, so the timestamp is the only clock there is.
        // forge-lint: disable-next-line(block-timestamp)
        require(block.timestamp > validAfter, "FiatTokenV2: authorization is not yet valid");
        // forge-lint: disable-next-line(block-timestamp)
        require(block.timestamp < validBefore, "FiatTokenV2: authorization is expired");
        _requireUnusedAuthorization(from, nonce);
        return MessageHashUtils.toTypedDataHash(
            DOMAIN_SEPARATOR(), keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce))
        );
    }

    function _validCancelDigest(address authorizer, bytes32 nonce) private view returns (bytes32) {
        _requireUnusedAuthorization(authorizer, nonce);
        return MessageHashUtils.toTypedDataHash(
            DOMAIN_SEPARATOR(), keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
        );
    }

    function _requireUnusedAuthorization(address authorizer, bytes32 nonce) private view {
        require(!_authorizationStates[authorizer][nonce], "FiatTokenV2: authorization is used or canceled");
    }

    function _useAuthorizationAndMove(address from, address to, uint256 value, bytes32 nonce) private {
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _move(from, to, value);
    }

    function _cancel(address authorizer, bytes32 nonce) private {
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    // ---------------------------------------------------------------- EIP-2612

    function nonces(address owner_) external view returns (uint256) {
        return _permitNonces[owner_];
    }

    function permit(address owner_, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
        notBlacklisted(owner_)
        notBlacklisted(spender)
    {
        bytes32 digest = _permitDigestSpendingNonce(owner_, spender, value, deadline);
        require(_isValidSignature(owner_, digest, v, r, s), "EIP2612: invalid signature");
        _approve(owner_, spender, value);
    }

    function permit(address owner_, address spender, uint256 value, uint256 deadline, bytes calldata signature)
        external
        whenNotPaused
        notBlacklisted(owner_)
        notBlacklisted(spender)
    {
        bytes32 digest = _permitDigestSpendingNonce(owner_, spender, value, deadline);
        require(SignatureChecker.isValidSignatureNowCalldata(owner_, digest, signature), "EIP2612: invalid signature");
        _approve(owner_, spender, value);
    }

    /// @dev Consumes the nonce before the signature is checked; a bad signature reverts the whole call,
    /// so the increment never sticks on failure.
    function _permitDigestSpendingNonce(address owner_, address spender, uint256 value, uint256 deadline)
        private
        returns (bytes32)
    {
        // forge-lint: disable-next-line(block-timestamp)
        require(deadline == type(uint256).max || deadline >= block.timestamp, "FiatTokenV2: permit is expired");
        return MessageHashUtils.toTypedDataHash(
            DOMAIN_SEPARATOR(),
            keccak256(abi.encode(PERMIT_TYPEHASH, owner_, spender, value, _permitNonces[owner_]++, deadline))
        );
    }

    // ---------------------------------------------------------------- signatures

    function _requireValidSignature(address signer, bytes32 digest, uint8 v, bytes32 r, bytes32 s) private view {
        require(_isValidSignature(signer, digest, v, r, s), "FiatTokenV2: invalid signature");
    }

    function _requireValidSignature(address signer, bytes32 digest, bytes calldata signature) private view {
        require(
            SignatureChecker.isValidSignatureNowCalldata(signer, digest, signature), "FiatTokenV2: invalid signature"
        );
    }

    /// @dev Same outcome as FiatToken v2.2 packing r‖s‖v and calling SignatureChecker, but an EOA (the
    /// settlement hot path) skips building the 65-byte copy; contract wallets still get r‖s‖v via ERC-1271.
    function _isValidSignature(address signer, bytes32 digest, uint8 v, bytes32 r, bytes32 s)
        private
        view
        returns (bool)
    {
        if (signer.code.length == 0) {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
            return err == ECDSA.RecoverError.NoError && recovered == signer;
        }
        return SignatureChecker.isValidERC1271SignatureNow(signer, digest, abi.encodePacked(r, s, v));
    }

    // ---------------------------------------------------------------- minting

    function masterMinter() external view returns (address) {
        return _masterMinter;
    }

    function isMinter(address account) external view returns (bool) {
        return _minters[account];
    }

    function minterAllowance(address minter) external view returns (uint256) {
        return _minterAllowed[minter];
    }

    function configureMinter(address minter, uint256 minterAllowedAmount)
        external
        whenNotPaused
        onlyMasterMinter
        returns (bool)
    {
        _minters[minter] = true;
        _minterAllowed[minter] = minterAllowedAmount;
        emit MinterConfigured(minter, minterAllowedAmount);
        return true;
    }

    function removeMinter(address minter) external onlyMasterMinter returns (bool) {
        _minters[minter] = false;
        _minterAllowed[minter] = 0;
        emit MinterRemoved(minter);
        return true;
    }

    function mint(address to, uint256 amount)
        external
        whenNotPaused
        onlyMinters
        notBlacklisted(msg.sender)
        notBlacklisted(to)
        returns (bool)
    {
        require(to != address(0), "FiatToken: mint to the zero address");
        require(amount > 0, "FiatToken: mint amount not greater than 0");
        uint256 allowed = _minterAllowed[msg.sender];
        require(amount <= allowed, "FiatToken: mint amount exceeds minterAllowance");
        unchecked {
            _minterAllowed[msg.sender] = allowed - amount;
        }
        // Mint before Transfer, FiatToken's log order, which indexers may rely on.
        emit Mint(msg.sender, to, amount);
        _mint(to, amount);
        return true;
    }

    function burn(uint256 amount) external whenNotPaused onlyMinters notBlacklisted(msg.sender) {
        require(amount > 0, "FiatToken: burn amount not greater than 0");
        require(amount <= balanceOf(msg.sender), "FiatToken: burn amount exceeds balance");
        emit Burn(msg.sender, amount);
        _burn(msg.sender, amount);
    }

    function updateMasterMinter(address newMasterMinter) external onlyOwner {
        require(newMasterMinter != address(0), "FiatToken: new masterMinter is the zero address");
        _masterMinter = newMasterMinter;
        emit MasterMinterChanged(newMasterMinter);
    }

    // ---------------------------------------------------------------- ownership

    function owner() external view returns (address) {
        return _owner;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "Ownable: new owner is the zero address");
        emit OwnershipTransferred(_owner, newOwner);
        _owner = newOwner;
    }

    // ---------------------------------------------------------------- pausing

    function pauser() external view returns (address) {
        return _pauser;
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    function pause() external onlyPauser {
        _paused = true;
        emit Pause();
    }

    function unpause() external onlyPauser {
        _paused = false;
        emit Unpause();
    }

    function updatePauser(address newPauser) external onlyOwner {
        require(newPauser != address(0), "Pausable: new pauser is the zero address");
        _pauser = newPauser;
        emit PauserChanged(newPauser);
    }

    // ---------------------------------------------------------------- blacklisting

    function blacklister() external view returns (address) {
        return _blacklister;
    }

    function isBlacklisted(address account) external view returns (bool) {
        return _blacklisted[account];
    }

    function blacklist(address account) external onlyBlacklister {
        _blacklisted[account] = true;
        emit Blacklisted(account);
    }

    function unBlacklist(address account) external onlyBlacklister {
        _blacklisted[account] = false;
        emit UnBlacklisted(account);
    }

    function updateBlacklister(address newBlacklister) external onlyOwner {
        require(newBlacklister != address(0), "Blacklistable: new blacklister is the zero address");
        _blacklister = newBlacklister;
        emit BlacklisterChanged(newBlacklister);
    }

    function _requireNotBlacklisted(address account) private view {
        require(!_blacklisted[account], "Blacklistable: account is blacklisted");
    }
}
