"""Deposit data written by the staking deposit tool (PyPI `ethstaker-deposit`),
for eth/tests/deposit_reference.rs to compare with Phalanx's own.

For each network, credential type and amount it derives a validator key
from a fixed test mnemonic, lets the tool build and sign the deposit, checks
it with the tool's own `validate_deposit`, and prints the secret key with
the tool's deposit entry as JSON. The mnemonic is the public BIP-39 test
mnemonic; these keys hold nothing.
"""

import json
import sys

from ethstaker_deposit.credentials import Credential
from ethstaker_deposit.settings import get_chain_setting
from ethstaker_deposit.utils.validation import validate_deposit

MNEMONIC = ("abandon abandon abandon abandon abandon abandon abandon abandon "
            "abandon abandon abandon about")
ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
GWEI = 10**9


def hexed(value):
    return value.hex() if isinstance(value, (bytes, bytearray)) else value


def main():
    cases = []
    for network in ("mainnet", "hoodi", "sepolia"):
        chain = get_chain_setting(network)
        for index, (compounding, amount) in enumerate(
                [(False, 32 * GWEI), (True, 32 * GWEI), (True, 2048 * GWEI),
                 (False, 1 * GWEI), (True, 123_456_789_000)]):
            credential = Credential(
                mnemonic=MNEMONIC, mnemonic_password="", index=index,
                amount=amount, chain_setting=chain,
                hex_withdrawal_address=ADDRESS, compounding=compounding)
            entry = {k: hexed(v) for k, v in credential.deposit_datum_dict.items()}
            if not validate_deposit(entry, chain, credential):
                sys.exit(f"ethstaker-deposit rejects its own deposit {network}/{index}")
            cases.append({
                "network": network,
                "secret_key": credential.signing_sk.to_bytes(32, "big").hex(),
                "withdrawal_address": ADDRESS,
                "compounding": compounding,
                "deposit": entry,
            })
    json.dump({"tool": "ethstaker-deposit", "cases": cases}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
