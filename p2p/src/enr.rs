//! Ethereum Node Records (EIP-778), "v4" identity scheme: how operators
//! name each other in cluster definitions and locks.
//!
//! A record is the RLP list `[signature, seq, k1, v1, k2, v2, …]` with keys
//! sorted; the signature is secp256k1 ECDSA (64 bytes, r‖s) over the
//! keccak-256 of the list without it. Text form: `enr:` + unpadded
//! URL-safe base64.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use base64::Engine as _;
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use libp2p::PeerId;
use sha3::{Digest, Keccak256};

use crate::error::IdentityError;
use crate::rlp;

/// EIP-778's limit on an encoded record.
pub const MAX_RECORD_SIZE: usize = 300;

/// A signed node record with the fields operators use.
#[derive(Clone, PartialEq, Eq)]
pub struct Enr {
    seq: u64,
    public_key: [u8; 33],
    ip: Option<Ipv4Addr>,
    tcp: Option<u16>,
    udp: Option<u16>,
    signature: [u8; 64],
}

impl Enr {
    /// Builds and signs a record with the secret key bytes.
    pub(crate) fn sign(
        secret: &[u8; 32],
        seq: u64,
        ip: Option<Ipv4Addr>,
        tcp: Option<u16>,
        udp: Option<u16>,
    ) -> Enr {
        // A libp2p secp256k1 secret is always a valid k256 scalar.
        let signing = SigningKey::from_slice(secret)
            .unwrap_or_else(|_| unreachable!("libp2p accepted this secp256k1 secret key"));
        let public_key: [u8; 33] = signing
            .verifying_key()
            .to_sec1_bytes()
            .as_ref()
            .try_into()
            .unwrap_or_else(|_| unreachable!("compressed keys are 33 bytes"));
        let mut enr = Enr {
            seq,
            public_key,
            ip,
            tcp,
            udp,
            signature: [0; 64],
        };
        let digest = Keccak256::digest(enr.content(false));
        let signature: Signature = signing
            .sign_prehash(&digest)
            .unwrap_or_else(|_| unreachable!("a 32-byte prehash is always signable"));
        let signature = signature.normalize_s();
        enr.signature.copy_from_slice(&signature.to_bytes());
        enr
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The compressed secp256k1 public key.
    pub fn public_key(&self) -> [u8; 33] {
        self.public_key
    }

    /// The IPv4 address, if the record has one.
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.ip
    }

    /// The TCP port, if any.
    pub fn tcp(&self) -> Option<u16> {
        self.tcp
    }

    /// The UDP port (QUIC), if any.
    pub fn udp(&self) -> Option<u16> {
        self.udp
    }

    /// The libp2p peer id of the record's key.
    pub fn peer_id(&self) -> PeerId {
        crate::identity::peer_id_of(&self.public_key)
            .unwrap_or_else(|_| unreachable!("the key was validated when the record was made"))
    }

    /// keccak-256 of the uncompressed public key: the discovery node id.
    pub fn node_id(&self) -> [u8; 32] {
        let key = VerifyingKey::from_sec1_bytes(&self.public_key)
            .unwrap_or_else(|_| unreachable!("the key was validated when the record was made"));
        let uncompressed = key.to_sec1_point(false);
        Keccak256::digest(&uncompressed.as_bytes()[1..]).into()
    }

    /// The addresses to dial: TCP and QUIC where the record has them.
    pub fn multiaddrs(&self) -> Vec<libp2p::Multiaddr> {
        let Some(ip) = self.ip else {
            return Vec::new();
        };
        let mut addresses = Vec::new();
        if let Some(tcp) = self.tcp {
            if let Ok(address) = format!("/ip4/{ip}/tcp/{tcp}").parse() {
                addresses.push(address);
            }
        }
        if let Some(udp) = self.udp {
            if let Ok(address) = format!("/ip4/{ip}/udp/{udp}/quic-v1").parse() {
                addresses.push(address);
            }
        }
        addresses
    }

    /// The RLP list, with or without the signature in front.
    fn content(&self, with_signature: bool) -> Vec<u8> {
        let mut payload = Vec::with_capacity(160);
        if with_signature {
            rlp::encode_bytes(&mut payload, &self.signature);
        }
        rlp::encode_uint(&mut payload, self.seq);
        rlp::encode_bytes(&mut payload, b"id");
        rlp::encode_bytes(&mut payload, b"v4");
        if let Some(ip) = self.ip {
            rlp::encode_bytes(&mut payload, b"ip");
            rlp::encode_bytes(&mut payload, &ip.octets());
        }
        rlp::encode_bytes(&mut payload, b"secp256k1");
        rlp::encode_bytes(&mut payload, &self.public_key);
        if let Some(tcp) = self.tcp {
            rlp::encode_bytes(&mut payload, b"tcp");
            rlp::encode_uint(&mut payload, u64::from(tcp));
        }
        if let Some(udp) = self.udp {
            rlp::encode_bytes(&mut payload, b"udp");
            rlp::encode_uint(&mut payload, u64::from(udp));
        }
        rlp::encode_list(&payload)
    }

    /// The encoded record.
    pub fn to_rlp(&self) -> Vec<u8> {
        self.content(true)
    }

    /// Decodes and verifies an encoded record. Keys Phalanx does not use
    /// (`eth2`, `attnets`, …) are allowed and covered by the signature
    /// check, but not kept: the record cannot be re-encoded from its fields
    /// then, so only records whose fields are all known re-encode exactly.
    pub fn from_rlp(bytes: &[u8]) -> Result<Enr, IdentityError> {
        let bad = |why: &str| IdentityError::Enr(why.to_string());
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(bad("longer than 300 bytes"));
        }
        let items = rlp::decode_list_of_strings(bytes).map_err(|e| bad(&format!("RLP: {e}")))?;
        if items.len() < 2 || items.len() % 2 != 0 {
            return Err(bad(
                "not a signature, a sequence number and key/value pairs",
            ));
        }
        let signature: [u8; 64] = items[0]
            .try_into()
            .map_err(|_| bad("the v4 signature must be 64 bytes"))?;
        let seq = rlp::decode_uint(items[1]).map_err(|_| bad("bad sequence number"))?;
        let mut id = None;
        let mut public_key = None;
        let mut ip = None;
        let mut tcp = None;
        let mut udp = None;
        let mut previous: Option<&[u8]> = None;
        for pair in items[2..].chunks_exact(2) {
            let (key, value) = (pair[0], pair[1]);
            if previous.is_some_and(|p| p >= key) {
                return Err(bad("keys not sorted or repeated"));
            }
            previous = Some(key);
            let port = |value: &[u8]| {
                rlp::decode_uint(value)
                    .ok()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| bad("bad port"))
            };
            match key {
                b"id" => id = Some(value),
                b"secp256k1" => {
                    public_key = Some(
                        <[u8; 33]>::try_from(value)
                            .map_err(|_| bad("secp256k1 key must be 33 bytes"))?,
                    )
                }
                b"ip" => {
                    let octets: [u8; 4] =
                        value.try_into().map_err(|_| bad("ip must be 4 bytes"))?;
                    ip = Some(Ipv4Addr::from(octets));
                }
                b"tcp" => tcp = Some(port(value)?),
                b"udp" => udp = Some(port(value)?),
                _ => {}
            }
        }
        if id != Some(b"v4".as_slice()) {
            return Err(bad("identity scheme is not v4"));
        }
        let public_key = public_key.ok_or_else(|| bad("no secp256k1 key"))?;
        let verifying =
            VerifyingKey::from_sec1_bytes(&public_key).map_err(|_| bad("invalid secp256k1 key"))?;
        // The signed content is the record's own bytes minus the signature.
        let mut payload = Vec::with_capacity(bytes.len());
        for item in &items[1..] {
            rlp::encode_bytes(&mut payload, item);
        }
        let digest = Keccak256::digest(rlp::encode_list(&payload));
        let parsed = Signature::from_slice(&signature).map_err(|_| bad("malformed signature"))?;
        verifying
            .verify_prehash(&digest, &parsed)
            .map_err(|_| bad("signature does not verify"))?;
        Ok(Enr {
            seq,
            public_key,
            ip,
            tcp,
            udp,
            signature,
        })
    }
}

impl fmt::Display for Enr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "enr:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.to_rlp())
        )
    }
}

impl fmt::Debug for Enr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for Enr {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Enr, IdentityError> {
        let encoded = text
            .trim()
            .strip_prefix("enr:")
            .ok_or_else(|| IdentityError::Enr("must start with `enr:`".into()))?;
        if encoded.len() > MAX_RECORD_SIZE * 4 / 3 + 4 {
            return Err(IdentityError::Enr("longer than 300 bytes".into()));
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|e| IdentityError::Enr(format!("base64: {e}")))?;
        Enr::from_rlp(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;

    /// The example record of EIP-778 (public test vector): private key
    /// b71c…f291, seq 1, ip 127.0.0.1, udp 30303.
    const EIP778_RECORD: &str = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
    const EIP778_KEY: &str = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";
    const EIP778_NODE_ID: &str = "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7";

    fn eip778_key() -> NodeKey {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(EIP778_KEY, &mut bytes).expect("hex");
        NodeKey::from_bytes(bytes).expect("key")
    }

    #[test]
    fn the_eip_778_example_decodes_and_verifies() {
        let enr: Enr = EIP778_RECORD.parse().expect("the EIP's record");
        assert_eq!(enr.seq(), 1);
        assert_eq!(enr.ip(), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(enr.udp(), Some(30303));
        assert_eq!(enr.tcp(), None);
        assert_eq!(hex::encode(enr.node_id()), EIP778_NODE_ID);
        assert_eq!(enr.public_key(), eip778_key().public_key());
        assert_eq!(enr.to_string(), EIP778_RECORD, "re-encodes byte for byte");
    }

    #[test]
    fn signing_the_eip_778_example_reproduces_it() {
        let enr = eip778_key().enr(1, Some(Ipv4Addr::new(127, 0, 0, 1)), None, Some(30303));
        // RFC 6979 signatures are deterministic: the same record results.
        assert_eq!(enr.to_string(), EIP778_RECORD);
    }

    #[test]
    fn records_round_trip_and_name_the_peer() {
        let key = NodeKey::generate();
        let enr = key.enr(3, Some(Ipv4Addr::new(10, 0, 0, 7)), Some(3610), Some(3630));
        let parsed: Enr = enr.to_string().parse().expect("round trip");
        assert_eq!(parsed, enr);
        assert_eq!(parsed.peer_id(), key.peer_id());
        assert_eq!(parsed.multiaddrs().len(), 2);
    }

    #[test]
    fn tampered_records_are_refused() {
        let key = NodeKey::generate();
        let enr = key.enr(1, Some(Ipv4Addr::new(10, 0, 0, 7)), Some(3610), None);
        let mut bytes = enr.to_rlp();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the tcp port
        let error = Enr::from_rlp(&bytes).expect_err("tampered");
        assert!(error.to_string().contains("signature"), "{error}");
        assert!("enr:".parse::<Enr>().is_err());
        assert!("enode://abc".parse::<Enr>().is_err());
        assert!(format!("enr:{}", "A".repeat(500)).parse::<Enr>().is_err());
    }
}
