"""Phalanx's cluster files checked by independent implementations: the
staking deposit tool (PyPI `ethstaker-deposit`) and `py_ecc`.

For every cluster folder given (one sub-folder per operator, each with
cluster-lock.json, deposit-data-*.json and validator_keys/):

- every operator holds the same lock and the same deposit data;
- each deposit passes the tool's own `validate_deposit` (fields, amount,
  deposit-data root, and the signature verified with py_ecc's
  G2ProofOfPossession) under the chain setting of its fork version:
  mainnet, hoodi and sepolia by name, anything else as a custom devnet;
- each share keystore decrypts with the tool's EIP-2335 implementation
  and its secret's public key is the lock's public share of that operator;
- any threshold of those decrypted shares interpolates (Lagrange at 0) to
  the secret of the validator's group key: the shares are a real sharing;
- each builder registration in the lock verifies with py_ecc under the
  group key (DOMAIN_APPLICATION_BUILDER over the genesis fork version).

Signatures made by a distributed key generation (a devnet folder) are
combined from partial signatures, so this checks Phalanx's combination.

Usage: check.py CLUSTER_DIR [CLUSTER_DIR ...]; exits non-zero on any
failure, naming it.
"""

import glob
import hashlib
import itertools
import json
import os
import sys

from py_ecc.bls import G2ProofOfPossession as bls
from py_ecc.optimized_bls12_381 import curve_order
from ssz import Serializable
from ssz.sedes import ByteVector, uint64

from ethstaker_deposit.key_handling.keystore import Keystore, KeystoreCrypto
from ethstaker_deposit.settings import get_chain_setting, get_devnet_chain_setting
from ethstaker_deposit.utils.ssz import compute_fork_data_root, compute_signing_root
from ethstaker_deposit.utils.validation import validate_deposit

KNOWN_NETWORKS = {"00000000": "mainnet", "10000910": "hoodi", "90000069": "sepolia"}
DOMAIN_APPLICATION_BUILDER = bytes.fromhex("00000001")
ZERO_ROOT = b"\x00" * 32


class ValidatorRegistration(Serializable):
    fields = [
        ("fee_recipient", ByteVector(20)),
        ("gas_limit", uint64),
        ("timestamp", uint64),
        ("pubkey", ByteVector(48)),
    ]


def unhex(value):
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def fail(message):
    print(f"format check FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def chain_setting(deposit):
    fork = deposit["fork_version"].removeprefix("0x")
    if fork in KNOWN_NETWORKS:
        return KNOWN_NETWORKS[fork], get_chain_setting(KNOWN_NETWORKS[fork])
    name = deposit.get("network_name", "devnet")
    return f"custom devnet {name} (fork {fork})", get_devnet_chain_setting(
        network_name=name,
        genesis_fork_version=fork,
        exit_fork_version=fork,
        genesis_validator_root=None,
    )


def read_keystore(path):
    """The tool's Keystore, built without its JSON schema check: that
    schema wants an EIP-2334 derivation path, but a key share derives from
    none, and EIP-2335 has an empty path say exactly that. Decryption is the
    tool's own."""
    document = json.load(open(path))
    if document.get("version") != 4 or document.get("path") not in ("", None) and not document["path"].startswith("m/"):
        fail(f"{path}: not an EIP-2335 version 4 keystore")
    return Keystore(
        crypto=KeystoreCrypto.from_json(document["crypto"]),
        description=document.get("description", ""),
        pubkey=document["pubkey"],
        path=document["path"],
        uuid=document["uuid"],
        version=document["version"],
    )


def decrypt(keystore, password):
    """The tool's EIP-2335 decryption. It refuses scrypt parameters below
    its security floor, which `phalanx devnet` uses for speed; for those the
    key is derived with the standard library's scrypt and handed to the
    tool, which still checks the checksum and decrypts."""
    try:
        return keystore.decrypt(password)
    except ValueError as e:
        if "not secure" not in str(e):
            raise
    params = keystore.crypto.kdf.params
    if keystore.crypto.kdf.function != "scrypt":
        raise ValueError(f"{keystore.crypto.kdf.function} with test-only parameters")
    salt = params["salt"] if isinstance(params["salt"], bytes) else bytes.fromhex(params["salt"])
    key = hashlib.scrypt(
        Keystore._process_password(password),
        salt=salt,
        n=params["n"],
        r=params["r"],
        p=params["p"],
        dklen=params["dklen"],
    )
    return keystore.decrypt(password, kdf_salt=salt, decryption_key=key)


def lagrange_at_zero(xs):
    """The Lagrange coefficients at 0 for the points xs, mod r."""
    coefficients = []
    for i, xi in enumerate(xs):
        numerator, denominator = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                numerator = numerator * xj % curve_order
                denominator = denominator * (xj - xi) % curve_order
        coefficients.append(numerator * pow(denominator, -1, curve_order) % curve_order)
    return coefficients


def check_cluster(folder):
    operators = sorted(
        os.path.dirname(path) for path in glob.glob(os.path.join(folder, "*", "cluster-lock.json"))
    )
    if not operators:
        fail(f"{folder}: no operator folder with a cluster-lock.json")
    locks = [json.load(open(os.path.join(op, "cluster-lock.json"))) for op in operators]
    if len({lock["lock_hash"] for lock in locks}) != 1:
        fail(f"{folder}: the operators hold different locks")
    lock = locks[0]
    threshold = lock["definition"]["threshold"]
    validators = lock["validators"]
    genesis_fork = unhex(lock["definition"]["network"]["genesis_fork_version"])

    # Deposit data: the same file at every operator, each entry valid.
    deposit_files = [sorted(glob.glob(os.path.join(op, "deposit-data-*.json"))) for op in operators]
    if any(len(files) != 1 for files in deposit_files):
        fail(f"{folder}: each operator needs exactly one deposit-data file: {deposit_files}")
    deposits = [json.load(open(files[0])) for files in deposit_files]
    if any(d != deposits[0] for d in deposits):
        fail(f"{folder}: the operators' deposit data differ")
    deposits = deposits[0]
    if len(deposits) != len(validators):
        fail(f"{folder}: {len(deposits)} deposits for {len(validators)} validators")
    networks = set()
    for index, (deposit, validator) in enumerate(zip(deposits, validators)):
        network, setting = chain_setting(deposit)
        networks.add(network)
        if "0x" + deposit["pubkey"] != validator["public_key"]:
            fail(f"{folder}: deposit {index} is for {deposit['pubkey']}, the lock's validator is {validator['public_key']}")
        if not validate_deposit(deposit, setting):
            fail(f"{folder}: deposit {index} of {deposit['pubkey']} fails ethstaker-deposit's validation on {network}")

    # Share keystores: decrypted by the tool, matching the lock's shares.
    shares = {}  # (validator, share index) -> secret
    for op in operators:
        for path in sorted(glob.glob(os.path.join(op, "validator_keys", "keystore-*.json"))):
            index = int(os.path.basename(path)[len("keystore-"):-len(".json")])
            password = open(path[: -len(".json")] + ".txt").read().strip()
            keystore = read_keystore(path)
            try:
                secret = int.from_bytes(decrypt(keystore, password), "big")
            except ValueError as e:
                fail(f"{path}: does not decrypt with its password file: {e}")
            public = "0x" + bls.SkToPk(secret).hex()
            if public != "0x" + keystore.pubkey.removeprefix("0x"):
                fail(f"{path}: the decrypted secret's public key is not the keystore's")
            public_shares = validators[index]["public_shares"]
            if public not in public_shares:
                fail(f"{path}: its key is not one of validator {index}'s public shares in the lock")
            shares[(index, public_shares.index(public) + 1)] = secret
    expected = len(validators) * len(operators)
    if len(shares) != expected:
        fail(f"{folder}: {len(shares)} share keystores, {expected} expected")

    # Any threshold of shares interpolates to the group key's secret.
    xs_all = list(range(1, len(operators) + 1))
    for index, validator in enumerate(validators):
        for xs in itertools.combinations(xs_all, threshold):
            secret = sum(
                lam * shares[(index, x)] for lam, x in zip(lagrange_at_zero(xs), xs)
            ) % curve_order
            if "0x" + bls.SkToPk(secret).hex() != validator["public_key"]:
                fail(f"{folder}: shares {xs} of validator {index} do not interpolate to its key")
        # One threshold fewer must not.
        short = xs_all[: threshold - 1]
        if short:
            secret = sum(
                lam * shares[(index, x)] for lam, x in zip(lagrange_at_zero(short), short)
            ) % curve_order
            if "0x" + bls.SkToPk(secret).hex() == validator["public_key"]:
                fail(f"{folder}: {threshold - 1} shares of validator {index} already give its key")

    # Builder registrations: the group key's signatures, checked with py_ecc.
    domain = DOMAIN_APPLICATION_BUILDER + compute_fork_data_root(genesis_fork, ZERO_ROOT)[:28]
    registrations = 0
    for index, validator in enumerate(validators):
        signed = validator.get("builder_registration")
        if not signed:
            continue
        message = signed["message"]
        registration = ValidatorRegistration(
            fee_recipient=unhex(message["fee_recipient"]),
            gas_limit=int(message["gas_limit"]),
            timestamp=int(message["timestamp"]),
            pubkey=unhex(message["pubkey"]),
        )
        root = compute_signing_root(registration, domain)
        if not bls.Verify(unhex(validator["public_key"]), root, unhex(signed["signature"])):
            fail(f"{folder}: validator {index}'s builder registration does not verify (py_ecc)")
        registrations += 1

    print(
        f"{folder}: {len(operators)} operators, threshold {threshold}, {len(validators)} validators on "
        f"{', '.join(sorted(networks))}: deposits valid (ethstaker-deposit), {len(shares)} share keystores "
        f"decrypted, every {threshold} of {len(operators)} shares interpolate to the group key, "
        f"{registrations} builder registrations verified (py_ecc)"
    )


def main():
    if len(sys.argv) < 2:
        fail("usage: check.py CLUSTER_DIR [CLUSTER_DIR ...]")
    for folder in sys.argv[1:]:
        check_cluster(folder)


if __name__ == "__main__":
    main()
