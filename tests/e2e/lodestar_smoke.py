"""Helpers of tests/e2e/lodestar-smoke.sh (python3 standard library only).

Usage: lodestar_smoke.py COMMAND [ARGS]

  ports N                        N free TCP ports on 127.0.0.1, one per line
  port-block N                   a first port P such that P..P+N-1 are free
                                 for TCP and UDP on 127.0.0.1
  wait-rest URL SECONDS PID...   until URL/eth/v1/beacon/genesis answers;
                                 fails early if one of the PIDs has exited
  interop-keys BN FIRST COUNT DIR
                                 derives the interop secret keys of
                                 validators FIRST..FIRST+COUNT-1, checks their
                                 public keys against the beacon node's
                                 validators at those indices, and writes them
                                 as EIP-2335 keystores (`interop-NNNN.json`,
                                 password in the `.txt` of the same name)
  network-yaml BN FILE           the beacon node's /eth/v1/config/spec as a
                                 config.yaml (for `phalanx create cluster
                                 --network`)
  vc-keys KEYS_DIR VC_DIR        lays an operator's share keystores
                                 (`keystore-N.json` + `keystore-N.txt`) out
                                 as Lodestar keeps imported keys, each with
                                 its own password: VC_DIR/keystores/0x<pubkey>/
                                 voting-keystore.json and VC_DIR/secrets/0x<pubkey>
  check-lock LOCK BN FIRST COUNT the lock's group keys are the chain's keys of
                                 validators FIRST..FIRST+COUNT-1, in order
  monitor BN FIRST COUNT FROM_EPOCH NEED_EPOCHS MAX_EPOCH SUMMARY_JSON
                                 follows the chain until NEED_EPOCHS
                                 consecutive epochs >= FROM_EPOCH have the
                                 attestation of every DV validator (FIRST..
                                 FIRST+COUNT-1, the chain's last validators)
                                 that can be in a block included in one, and
                                 the chain has finalized the first of them;
                                 fails once the clock passes MAX_EPOCH.
                                 Reads only the beacon node's REST API.
  early-proposals BN FIRST COUNT FROM_SLOT UNTIL_EPOCH SUMMARY_JSON
                                 a canonical DV block at every slot from
                                 FROM_SLOT to the end of epoch UNTIL_EPOCH-1
                                 (before Capella) a DV validator was to
                                 propose at; fails if there was none
  outcomes URL                   a node's duty outcomes (its /metrics) on one
                                 line
  client-errors LOG...           the validator clients' error messages by
                                 frequency (reported, not asserted)

The verdicts (`monitor`, `early-proposals`) rest on the beacon node's REST API alone; `outcomes`
and `client-errors` only report what the nodes and clients say of themselves.
"""

import hashlib
import json
import os
import re
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

# --- BLS12-381 G1, just enough to derive public keys --------------------------

# The base field modulus, the group order, and the generator of G1.
P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
G1 = (
    0x17F1D3A73197D7942695638C4FA9AC0FC3688C4F9774B905A14E3A3F171BAC586C55E83FF97A1AEFFB3AF00ADB22C6BB,
    0x08B3F481E3AAA0F1A09E30ED741D8AE4FCF5E095D5D00AF600DB18CB2C04B3EDD03CC744A2888AE40CAA232946C5E7E1,
)


def g1_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        slope = 3 * x1 * x1 * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def g1_mul(point, scalar):
    result = None
    while scalar:
        if scalar & 1:
            result = g1_add(result, point)
        point = g1_add(point, point)
        scalar >>= 1
    return result


def public_key(secret):
    """The compressed G1 public key (ZCash serialisation) of a secret key."""
    x, y = g1_mul(G1, secret)
    flags = 0x80 | (0x20 if y > P - y else 0)
    raw = bytearray(x.to_bytes(48, "big"))
    raw[0] |= flags
    return bytes(raw)


def interop_secret(index):
    """The interop (mock-start) secret key of a validator index."""
    digest = hashlib.sha256(index.to_bytes(32, "little")).digest()
    return int.from_bytes(digest, "little") % R


# --- AES-128 (encryption of one block), for EIP-2335's AES-128-CTR ------------


def _sbox():
    box = [0] * 256
    p = q = 1
    while True:
        # p runs through the multiplicative group by 3, q through its inverses.
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        rot = lambda v, s: ((v << s) | (v >> (8 - s))) & 0xFF  # noqa: E731
        box[p] = q ^ rot(q, 1) ^ rot(q, 2) ^ rot(q, 3) ^ rot(q, 4) ^ 0x63
        if p == 1:
            break
    box[0] = 0x63
    return box


SBOX = _sbox()


def _xtime(v):
    return ((v << 1) ^ (0x1B if v & 0x80 else 0)) & 0xFF


def _expand_key(key):
    words = [list(key[i : i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        word = list(words[i - 1])
        if i % 4 == 0:
            word = [SBOX[b] for b in word[1:] + word[:1]]
            word[0] ^= rcon
            rcon = _xtime(rcon)
        words.append([a ^ b for a, b in zip(words[i - 4], word)])
    return [sum(words[4 * r : 4 * r + 4], []) for r in range(11)]


def aes128_encrypt_block(key, block):
    round_keys = _expand_key(key)
    state = [b ^ k for b, k in zip(block, round_keys[0])]
    for rnd in range(1, 11):
        state = [SBOX[b] for b in state]
        # Shift rows: the state is column-major, byte (row r, column c) at 4c + r.
        state = [state[(4 * ((i // 4 + i % 4) % 4)) + i % 4] for i in range(16)]
        if rnd != 10:
            mixed = []
            for c in range(4):
                a = state[4 * c : 4 * c + 4]
                total = a[0] ^ a[1] ^ a[2] ^ a[3]
                mixed += [a[r] ^ total ^ _xtime(a[r] ^ a[(r + 1) % 4]) for r in range(4)]
            state = mixed
        state = [b ^ k for b, k in zip(state, round_keys[rnd])]
    return bytes(state)


def aes128_ctr(key, iv, data):
    counter = int.from_bytes(iv, "big")
    out = bytearray()
    for offset in range(0, len(data), 16):
        stream = aes128_encrypt_block(key, counter.to_bytes(16, "big"))
        out += bytes(a ^ b for a, b in zip(data[offset : offset + 16], stream))
        counter = (counter + 1) % (1 << 128)
    return bytes(out)


def self_test():
    # FIPS-197 appendix C.1.
    got = aes128_encrypt_block(bytes(range(16)), bytes.fromhex("00112233445566778899aabbccddeeff"))
    if got.hex() != "69c4e0d86a7b0430d8cdb78070b4c55a":
        raise SystemExit(f"AES-128 self-test failed: {got.hex()}")
    # The secret key 1 has the generator as public key.
    if public_key(1).hex() != "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb":
        raise SystemExit("BLS12-381 G1 self-test failed")


def keystore(secret, password):
    """An EIP-2335 keystore (PBKDF2, AES-128-CTR) of a secret key."""
    salt, iv = secrets.token_bytes(32), secrets.token_bytes(16)
    # Interop keys are public: a cheap KDF spares the debug build of phalanx
    # seconds per keystore (2^18 rounds take it about 1.5 s).
    rounds = 1 << 10
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds, dklen=32)
    ciphertext = aes128_ctr(derived[:16], iv, secret.to_bytes(32, "big"))
    checksum = hashlib.sha256(derived[16:32] + ciphertext).hexdigest()
    return {
        "crypto": {
            "kdf": {
                "function": "pbkdf2",
                "params": {"dklen": 32, "c": rounds, "prf": "hmac-sha256", "salt": salt.hex()},
                "message": "",
            },
            "checksum": {"function": "sha256", "params": {}, "message": checksum},
            "cipher": {"function": "aes-128-ctr", "params": {"iv": iv.hex()}, "message": ciphertext.hex()},
        },
        "description": "interop validator key (tests only)",
        "pubkey": public_key(secret).hex(),
        "path": "",
        "uuid": str(uuid.uuid4()),
        "version": 4,
    }


# --- beacon-node REST ---------------------------------------------------------


def http(url, body=None, timeout=5.0):
    """(status, parsed JSON or None) of a GET, or of a POST when body is given."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def get(bn, path, body=None, tries=5):
    last = None
    for _ in range(tries):
        try:
            status, value = http(bn + path, body)
            if status == 200:
                return value
            last = f"HTTP {status}"
            if status == 404:
                break
        except (OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.5)
    raise RuntimeError(f"{path}: {last}")


def chain_keys(bn, first, count):
    indices = "&".join(f"id={i}" for i in range(first, first + count))
    data = get(bn, f"/eth/v1/beacon/states/head/validators?{indices}")["data"]
    keys = {int(v["index"]): v["validator"]["pubkey"].lower() for v in data}
    missing = [i for i in range(first, first + count) if i not in keys]
    if missing:
        raise SystemExit(f"the beacon node has no validators {missing}")
    return [keys[i] for i in range(first, first + count)]


# --- commands -----------------------------------------------------------------


def cmd_ports(count):
    sockets, ports = [], []
    try:
        while len(ports) < int(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    print("\n".join(map(str, ports)))


def _free(port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def cmd_port_block(count):
    count = int(count)
    rng = secrets.SystemRandom()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        if all(_free(base + i, k) for i in range(count) for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM)):
            print(base)
            return
    raise SystemExit(f"no {count} consecutive free ports found")


def cmd_wait_rest(url, seconds, *pids):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                raise SystemExit(f"process {pid} exited while waiting for {url}")
        try:
            if http(url + "/eth/v1/beacon/genesis", timeout=2)[0] == 200:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer /eth/v1/beacon/genesis within {seconds} s")


def cmd_interop_keys(bn, first, count, directory):
    self_test()
    first, count, directory = int(first), int(count), Path(directory)
    directory.mkdir(parents=True, exist_ok=False)
    expected = chain_keys(bn, first, count)
    for offset in range(count):
        index = first + offset
        secret = interop_secret(index)
        derived = "0x" + public_key(secret).hex()
        if derived != expected[offset]:
            raise SystemExit(f"validator {index}: derived key {derived}, the chain has {expected[offset]}")
        password = secrets.token_hex(16)
        (directory / f"interop-{index:04}.txt").write_text(password)
        (directory / f"interop-{index:04}.json").write_text(json.dumps(keystore(secret, password), indent=2))
        print(f"validator {index}: {derived} (matches the chain)")


def cmd_network_yaml(bn, path):
    spec = get(bn, "/eth/v1/config/spec")["data"]
    lines = [f"{key}: {value}" for key, value in spec.items() if isinstance(value, str)]
    Path(path).write_text("\n".join(lines) + "\n")


def cmd_vc_keys(keys_dir, vc_dir):
    keys_dir, vc_dir = Path(keys_dir), Path(vc_dir)
    stores = sorted(keys_dir.glob("keystore-*.json"))
    if not stores:
        raise SystemExit(f"no keystore-*.json in {keys_dir}")
    (vc_dir / "secrets").mkdir(parents=True, exist_ok=True)
    for path in stores:
        pubkey = "0x" + json.loads(path.read_text())["pubkey"].lower().removeprefix("0x")
        target = vc_dir / "keystores" / pubkey
        target.mkdir(parents=True)
        (target / "voting-keystore.json").write_bytes(path.read_bytes())
        secret = vc_dir / "secrets" / pubkey
        secret.write_text(path.with_suffix(".txt").read_text().strip())
        secret.chmod(0o600)
    print(f"{len(stores)} share keystores for {vc_dir}")


def cmd_check_lock(lock_path, bn, first, count):
    lock = json.loads(Path(lock_path).read_text())
    group = [("0x" + v["public_key"].lower().removeprefix("0x")) for v in lock["validators"]]
    expected = chain_keys(bn, int(first), int(count))
    if group != expected:
        raise SystemExit(f"the lock's group keys {group} are not the chain's {expected}")


def bits(hex_value):
    """The bits of an SSZ bitfield given as 0x-hex, least significant first."""
    raw = bytes.fromhex(hex_value.removeprefix("0x"))
    return [(raw[i // 8] >> (i % 8)) & 1 for i in range(8 * len(raw))]


class Chain:
    """What the monitor has read from the beacon node, cached."""

    def __init__(self, bn, first, count):
        self.bn = bn
        self.indices = list(range(first, first + count))
        self.everyone = list(range(first + count))
        genesis = get(bn, "/eth/v1/beacon/genesis")["data"]
        spec = get(bn, "/eth/v1/config/spec")["data"]
        self.genesis_time = int(genesis["genesis_time"])
        self.seconds_per_slot = int(spec["SECONDS_PER_SLOT"])
        self.slots_per_epoch = int(spec["SLOTS_PER_EPOCH"])
        self.sync_period = int(spec["EPOCHS_PER_SYNC_COMMITTEE_PERIOD"])
        self.duties = {}  # epoch -> {validator index: (slot, committee index, position)}
        self.blocks = {}  # slot -> block message, or None when the slot is empty
        self.roots = {}  # slot -> canonical block root at or before it
        self.sync_positions = {}  # sync period -> {validator index: [positions]}
        self.proposers = {}  # epoch -> {slot: proposer index}

    def clock_slot(self):
        return max(0, int(time.time() - self.genesis_time) // self.seconds_per_slot)

    def head_slot(self):
        return int(get(self.bn, "/eth/v1/beacon/headers/head")["data"]["header"]["message"]["slot"])

    def attester_duties(self, epoch):
        """Every validator's attester duty in `epoch` (the chain's validators, not only ours)."""
        if epoch not in self.duties:
            body = [str(i) for i in self.everyone]
            data = get(self.bn, f"/eth/v1/validator/duties/attester/{epoch}", body)["data"]
            self.duties[epoch] = {
                int(d["validator_index"]): (int(d["slot"]), int(d["committee_index"]), int(d["validator_committee_index"]))
                for d in data
            }
        return self.duties[epoch]

    def proposer_duties(self, epoch):
        """The proposer of every slot of `epoch` (served only around the
        current epoch: fetched while it is)."""
        if epoch not in self.proposers:
            data = get(self.bn, f"/eth/v1/validator/duties/proposer/{epoch}")["data"]
            duties = {int(d["slot"]): int(d["validator_index"]) for d in data}
            spe = self.slots_per_epoch
            # Lodestar 1.5.1 answers a request for the next epoch with the
            # current one's proposers: keep only an answer for `epoch`.
            if not duties or any(slot // spe != epoch for slot in duties):
                raise RuntimeError(f"the proposers served for epoch {epoch} are of another epoch")
            self.proposers[epoch] = duties
        return self.proposers[epoch]

    def proposals(self, epoch):
        """The slots of `epoch` our validators were to propose at, and those
        of them whose canonical block they proposed."""
        scheduled = sorted(
            slot for slot, proposer in self.proposer_duties(epoch).items()
            if proposer in self.indices and slot > 0
        )
        made = [
            slot for slot in scheduled
            if self.block(slot) is not None and int(self.block(slot)["proposer_index"]) in self.indices
            and self.block_root(slot) is not None
        ]
        return scheduled, made

    def includable(self, epoch):
        """Our validators whose committee has a member the dev chain runs.

        Lodestar 1.5.1 packs blocks only from aggregates, and a validator
        client that is not DV-aware cannot aggregate for a distributed
        validator; so a committee of distributed validators alone has no
        aggregator whose aggregate could carry their attestations.
        """
        duties = self.attester_duties(epoch)
        ours = set(self.indices)
        helped = {duties[i][:2] for i in duties if i not in ours}
        return [i for i in self.indices if i in duties and duties[i][:2] in helped]

    def block(self, slot):
        if slot not in self.blocks:
            try:
                self.blocks[slot] = get(self.bn, f"/eth/v2/beacon/blocks/{slot}", tries=3)["data"]["message"]
            except RuntimeError as e:
                if "HTTP 404" not in str(e):
                    raise
                self.blocks[slot] = None
        return self.blocks[slot]

    def block_root(self, slot):
        """The canonical block root at or before `slot`."""
        if slot not in self.roots:
            root = None
            for at in range(slot, -1, -1):
                try:
                    root = get(self.bn, f"/eth/v1/beacon/blocks/{at}/root", tries=3)["data"]["root"]
                    break
                except RuntimeError as e:
                    if "HTTP 404" not in str(e):
                        raise
            self.roots[slot] = root
        return self.roots[slot]

    def finality(self):
        data = get(self.bn, "/eth/v1/beacon/states/head/finality_checkpoints")["data"]
        return int(data["current_justified"]["epoch"]), int(data["finalized"]["epoch"])

    def sync_committee_positions(self, epoch):
        period = epoch // self.sync_period
        if period not in self.sync_positions:
            try:
                members = get(self.bn, f"/eth/v1/beacon/states/head/sync_committees?epoch={epoch}", tries=2)["data"]["validators"]
            except RuntimeError:
                members = []
            self.sync_positions[period] = {
                i: [p for p, m in enumerate(members) if int(m) == i] for i in self.indices
            }
        return self.sync_positions[period]

    def inclusion(self, epoch, last_slot):
        """Per validator of ours with a duty in `epoch`: None if its attestation
        is in no block up to `last_slot`, else (inclusion slot, target
        correct, head correct)."""
        duties = self.attester_duties(epoch)
        spe = self.slots_per_epoch
        target_root = self.block_root(epoch * spe)
        found = {i: None for i in self.indices if i in duties}
        for slot in range(epoch * spe + 1, last_slot + 1):
            block = self.block(slot)
            if block is None:
                continue
            for attestation in block["body"]["attestations"]:
                data = attestation["data"]
                aggregated = bits(attestation["aggregation_bits"])
                for index in found:
                    duty_slot, committee, position = duties[index]
                    if found[index] is not None:
                        continue
                    if int(data["slot"]) != duty_slot or int(data["index"]) != committee:
                        continue
                    if position < len(aggregated) and aggregated[position]:
                        found[index] = (
                            slot,
                            data["target"]["root"] == target_root,
                            data["beacon_block_root"] == self.block_root(duty_slot),
                        )
        return found

    def others(self, epoch):
        """Blocks in `epoch`, those our validators proposed, the sync-committee
        bits of ours those blocks set, and the blocks whose sync aggregate is
        empty (no member's message, ours or the dev chain's, reached an
        aggregate for that head: counted apart, not against ours)."""
        spe = self.slots_per_epoch
        blocks = proposed = sync_set = sync_expected = empty = 0
        positions = self.sync_committee_positions(epoch)
        for slot in range(epoch * spe, (epoch + 1) * spe):
            block = self.block(slot)
            if block is None:
                continue
            blocks += 1
            if int(block["proposer_index"]) in self.indices:
                proposed += 1
            aggregate = block["body"].get("sync_aggregate")
            if aggregate:
                sync_bits = bits(aggregate["sync_committee_bits"])
                if not any(sync_bits):
                    empty += 1
                    continue
                for places in positions.values():
                    for p in places:
                        sync_expected += 1
                        sync_set += sync_bits[p] if p < len(sync_bits) else 0
        return blocks, proposed, sync_set, sync_expected, empty


def cmd_monitor(bn, first, count, from_epoch, need_epochs, max_epoch, summary_path, label="all nodes up"):
    """Watches the chain until `need_epochs` consecutive epochs from
    `from_epoch` on have every includable DV attestation in a block, a DV
    block at every slot a DV validator was to propose at, and every DV
    sync-committee bit set in the blocks there are; and the chain has
    finalized the first of them. Fails after `max_epoch`."""
    first, count = int(first), int(count)
    from_epoch, need_epochs, max_epoch = int(from_epoch), int(need_epochs), int(max_epoch)
    chain = Chain(bn, first, count)
    spe = chain.slots_per_epoch
    epochs = []
    streak = []
    finalized = justified = 0
    next_epoch = from_epoch
    print(f"monitor [{label}]: DV validators {first}..{first + count - 1}, epochs from {from_epoch}, "
          f"{need_epochs} consecutive needed, giving up after epoch {max_epoch}", flush=True)
    outcome = None
    while outcome is None:
        clock = chain.clock_slot()
        # Duties are served only up to the next epoch: fetch them while they are.
        for epoch in range(next_epoch, clock // spe + 2):
            try:
                chain.attester_duties(epoch)
                if epoch <= clock // spe:
                    chain.proposer_duties(epoch)
            except RuntimeError as e:
                print(f"monitor: duties of epoch {epoch} not yet served: {e}", flush=True)
        head = chain.head_slot()
        # An epoch is judged once every attestation of ours that could be in
        # a block is, or once its inclusion window (to the end of the next
        # epoch) has passed.
        while clock > (next_epoch + 1) * spe:
            window_end = (next_epoch + 2) * spe - 1
            last = min(head, window_end)
            found = chain.inclusion(next_epoch, last)
            includable = chain.includable(next_epoch)
            included = [i for i, f in found.items() if f is not None]
            complete = all(found.get(i) is not None for i in includable)
            if not complete and last < window_end:
                break
            duties = chain.attester_duties(next_epoch)
            delays = [found[i][0] - duties[i][0] for i in included]
            blocks, proposed, sync_set, sync_expected, empty_sync = chain.others(next_epoch)
            try:
                scheduled, made = chain.proposals(next_epoch)
            except RuntimeError as e:
                print(f"monitor: proposers of epoch {next_epoch} unknown: {e}", flush=True)
                scheduled, made = None, []
            justified, finalized = chain.finality()
            record = {
                "epoch": next_epoch,
                "validators": len(found),
                "includable": len(includable),
                "included": len(included),
                "missing": sorted(i for i in includable if found.get(i) is None),
                "not_includable": sorted(set(found) - set(includable)),
                "inclusion_delay_max": max(delays) if delays else None,
                "target_correct": sum(1 for i in included if found[i][1]),
                "head_correct": sum(1 for i in included if found[i][2]),
                "duties": {i: duties[i] for i in found},
                "included_at": {i: found[i][0] for i in included},
                "blocks": blocks,
                "blocks_proposed_by_dv": proposed,
                "sync_bits_set": sync_set,
                "sync_bits_expected": sync_expected,
                "empty_sync_aggregates": empty_sync,
                "dv_proposer_slots": scheduled,
                "dv_blocks_at": made,
                "justified": justified,
                "finalized": finalized,
            }
            epochs.append(record)
            print(
                f"epoch {next_epoch}: {len(included)}/{len(found)} DV attestations included"
                f" ({len(includable)} in a committee with a dev-chain aggregator;"
                f" max delay {record['inclusion_delay_max']}, target correct {record['target_correct']},"
                f" head correct {record['head_correct']}); blocks {blocks}/{spe}, by DV {proposed};"
                f" DV sync bits {sync_set}/{sync_expected}; justified {justified}, finalized {finalized}",
                flush=True,
            )
            if record["missing"]:
                print(f"epoch {next_epoch}: not included: {record['missing']}", flush=True)
            proposals_ok = scheduled is not None and len(made) == len(scheduled)
            sync_ok = sync_set == sync_expected
            print(
                f"epoch {next_epoch}: DV proposer slots {scheduled}, DV blocks there {made};"
                f" sync bits {'all set' if sync_ok else 'MISSING some'}"
                f" ({empty_sync} block(s) with an empty sync aggregate, counted apart)",
                flush=True,
            )
            if includable and complete and proposals_ok and sync_ok:
                streak.append(next_epoch)
            else:
                streak = []
            next_epoch += 1
        if len(streak) >= need_epochs:
            justified, finalized = chain.finality()
            if finalized >= streak[0]:
                outcome = "pass"
                break
        if clock // spe > max_epoch:
            outcome = "fail"
            break
        time.sleep(1)
    summary = {
        "phase": label,
        "result": outcome,
        "validators": chain.indices,
        "from_epoch": from_epoch,
        "consecutive_full_epochs": streak,
        "justified": justified,
        "finalized": finalized,
        "epochs": epochs,
    }
    Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    if outcome != "pass":
        reason = (
            f"only {len(streak)} consecutive epochs (need {need_epochs}) with every includable DV attestation"
            f" included, every DV proposal made and every DV sync-committee bit set"
            if len(streak) < need_epochs
            else f"the chain finalized only epoch {finalized}, not epoch {streak[0]}"
        )
        raise SystemExit(f"monitor [{label}]: FAILED by epoch {max_epoch}: {reason}")
    dv_blocks = sum(len(e["dv_blocks_at"]) for e in epochs if e["epoch"] in streak)
    print(f"monitor [{label}]: passed: epochs {streak} with every DV attestation, proposal ({dv_blocks} blocks)"
          f" and sync-committee bit, finalized epoch {finalized}", flush=True)


def fork_of(spec, epoch):
    """The name of the fork in force at `epoch`, by the chain's config."""
    name = "phase0"
    for fork in ("altair", "bellatrix", "capella", "deneb", "electra", "fulu"):
        at = spec.get(f"{fork.upper()}_FORK_EPOCH")
        if at is not None and int(at) <= epoch:
            name = fork
    return name


def cmd_early_proposals(bn, first, count, from_slot, until_epoch, summary_path):
    """Watches the epochs before `until_epoch` (Capella) from `from_slot`
    on, and asserts a canonical DV block at every slot from `from_slot` a
    DV validator was to propose at: blocks of Altair and Bellatrix,
    produced through Phalanx for an unmodified validator client. Fails if
    there was no such slot to judge."""
    first, count, from_slot, until_epoch = int(first), int(count), int(from_slot), int(until_epoch)
    chain = Chain(bn, first, count)
    spec = get(bn, "/eth/v1/config/spec")["data"]
    spe = chain.slots_per_epoch
    epoch = from_slot // spe
    records = []
    print(f"early proposals: DV blocks from slot {from_slot} to the end of epoch {until_epoch - 1}", flush=True)
    while epoch < until_epoch:
        clock = chain.clock_slot()
        if clock // spe == epoch:
            try:
                chain.proposer_duties(epoch)
            except RuntimeError as e:
                print(f"early proposals: proposers of epoch {epoch} not yet served: {e}", flush=True)
        # Judged once the epoch's last slot has had a slot to arrive.
        if clock > (epoch + 1) * spe:
            if epoch not in chain.proposers:
                raise SystemExit(f"early proposals: FAILED: the proposers of epoch {epoch} were never served")
            scheduled, made = chain.proposals(epoch)
            scheduled = [slot for slot in scheduled if slot >= from_slot]
            made = [slot for slot in made if slot >= from_slot]
            record = {"epoch": epoch, "fork": fork_of(spec, epoch), "dv_proposer_slots": scheduled, "dv_blocks_at": made}
            records.append(record)
            print(f"epoch {epoch} ({record['fork']}): DV proposer slots {scheduled}, DV blocks there {made}", flush=True)
            epoch += 1
            continue
        time.sleep(1)
    Path(summary_path).write_text(json.dumps({"phase": "before capella", "epochs": records}, indent=2) + "\n")
    missed = [slot for r in records for slot in r["dv_proposer_slots"] if slot not in r["dv_blocks_at"]]
    judged = sum(len(r["dv_proposer_slots"]) for r in records)
    if missed:
        raise SystemExit(f"early proposals: FAILED: no DV block at DV proposer slots {missed}")
    if judged == 0:
        raise SystemExit(f"early proposals: FAILED: no DV proposer slot from slot {from_slot} before Capella to judge")
    forks = sorted({r["fork"] for r in records if r["dv_blocks_at"]})
    print(f"early proposals: passed: a DV block at each of {judged} DV proposer slots ({', '.join(forks)})", flush=True)


def cmd_outcomes(url):
    """A node's duty outcomes from its metrics, on one line."""
    counts = {}
    try:
        response = urllib.request.urlopen(url, timeout=3)
    except OSError as e:
        print(f"metrics unreachable ({e.__class__.__name__}): the node is stopped")
        return
    with response:
        for line in response.read().decode().splitlines():
            match = re.match(r'phalanx_duty_outcomes_total\{duty="(\w+)",outcome="(\w+)"\} (\d+)', line)
            if match:
                duty, outcome, count = match.groups()
                counts.setdefault(duty, {})[outcome] = int(count)
    print("; ".join(
        f"{duty}: " + ", ".join(f"{outcome} {n}" for outcome, n in sorted(outcomes.items()))
        for duty, outcomes in sorted(counts.items())
    ) or "no duty outcomes")


def cmd_client_errors(*logs):
    """The validator clients' error messages, numbers and keys masked, most frequent first."""
    counts = {}
    for log in logs:
        for line in Path(log).read_text(errors="replace").splitlines():
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            if " error: " not in line:
                continue
            message = line.split(" error: ", 1)[1]
            message = re.sub(r"0x[0-9a-f…]+", "0x…", message)
            message = re.sub(r"\b\d+\b", "N", message)
            counts[message] = counts.get(message, 0) + 1
    for message, n in sorted(counts.items(), key=lambda kv: -kv[1])[:6]:
        print(f"{n:6} x {message[:200]}")


COMMANDS = {
    "ports": cmd_ports,
    "port-block": cmd_port_block,
    "wait-rest": cmd_wait_rest,
    "interop-keys": cmd_interop_keys,
    "network-yaml": cmd_network_yaml,
    "vc-keys": cmd_vc_keys,
    "check-lock": cmd_check_lock,
    "monitor": cmd_monitor,
    "early-proposals": cmd_early_proposals,
    "outcomes": cmd_outcomes,
    "client-errors": cmd_client_errors,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        raise SystemExit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
