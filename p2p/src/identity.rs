//! The operator's node key: a secp256k1 key in a file only its owner can
//! read, from which the libp2p peer id and the ENR derive.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use libp2p::PeerId;
use libp2p_identity::secp256k1;

use crate::enr::Enr;
use crate::error::IdentityError;

/// The file name of the node key inside a data directory.
pub const NODE_KEY_FILE: &str = "enr-private-key";

/// An operator's secp256k1 node key.
#[derive(Clone)]
pub struct NodeKey {
    keypair: secp256k1::Keypair,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A new random key.
    pub fn generate() -> NodeKey {
        NodeKey {
            keypair: secp256k1::Keypair::generate(),
        }
    }

    /// A key from its 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<NodeKey, IdentityError> {
        let secret = secp256k1::SecretKey::try_from_bytes(bytes)
            .map_err(|_| IdentityError::InvalidKey("not a valid secp256k1 secret key".into()))?;
        Ok(NodeKey {
            keypair: secret.into(),
        })
    }

    /// Reads a key file: 64 hex characters, readable by its owner only.
    pub fn load(path: &Path) -> Result<NodeKey, IdentityError> {
        check_permissions(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| IdentityError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let text = text.trim();
        let text = text.strip_prefix("0x").unwrap_or(text);
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| {
            IdentityError::InvalidKey(format!(
                "{} must hold 64 hex characters (a 32-byte secp256k1 key)",
                path.display()
            ))
        })?;
        NodeKey::from_bytes(bytes)
    }

    /// Generates a key and writes it to `path` with mode 0600. Refuses to
    /// overwrite an existing file: a node key is an operator's identity.
    pub fn create(path: &Path) -> Result<NodeKey, IdentityError> {
        let key = NodeKey::generate();
        key.save(path)?;
        Ok(key)
    }

    /// Writes the key to a new file `path` with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), IdentityError> {
        let io = |e| IdentityError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                IdentityError::Exists(path.display().to_string())
            } else {
                io(e)
            }
        })?;
        let secret = hex::encode(self.keypair.secret().to_bytes());
        file.write_all(secret.as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(&libp2p_identity::PublicKey::from(
            self.keypair.public().clone(),
        ))
    }

    /// The key as libp2p takes it.
    pub fn libp2p_keypair(&self) -> libp2p_identity::Keypair {
        libp2p_identity::Keypair::from(self.keypair.clone())
    }

    /// The 32 secret bytes, for the sealing of messages to this key.
    pub(crate) fn secret_bytes(&self) -> [u8; 32] {
        self.keypair.secret().to_bytes()
    }

    /// The 33-byte compressed public key.
    pub fn public_key(&self) -> [u8; 33] {
        self.keypair.public().to_bytes()
    }

    /// Signs `bytes` (SHA-256, then ECDSA; DER-encoded), as other operators
    /// check with [`verify`].
    pub fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        self.keypair.secret().sign(bytes)
    }

    /// The ENR of this key with the given addresses and sequence number.
    pub fn enr(&self, seq: u64, ip: Option<Ipv4Addr>, tcp: Option<u16>, udp: Option<u16>) -> Enr {
        let secret = self.keypair.secret().to_bytes();
        Enr::sign(&secret, seq, ip, tcp, udp)
    }
}

/// Checks a [`NodeKey::sign`] signature against a compressed public key.
pub fn verify(public_key: &[u8; 33], bytes: &[u8], signature: &[u8]) -> bool {
    secp256k1::PublicKey::try_from_bytes(public_key).is_ok_and(|key| key.verify(bytes, signature))
}

/// The peer id of a compressed secp256k1 public key.
pub fn peer_id_of(public_key: &[u8; 33]) -> Result<PeerId, IdentityError> {
    let key = secp256k1::PublicKey::try_from_bytes(public_key)
        .map_err(|_| IdentityError::InvalidKey("not a secp256k1 public key".into()))?;
    Ok(PeerId::from_public_key(&libp2p_identity::PublicKey::from(
        key,
    )))
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|e| IdentityError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(NODE_KEY_FILE);
        let key = NodeKey::create(&path).expect("create");
        let loaded = NodeKey::load(&path).expect("load");
        assert_eq!(key.peer_id(), loaded.peer_id());
        assert!(matches!(
            NodeKey::create(&path),
            Err(IdentityError::Exists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let error = NodeKey::load(&path).expect_err("world-readable key refused");
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
    }

    #[test]
    fn corrupt_key_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, content) in [
            ("short", "abcd"),
            ("not-hex", &"zz".repeat(32)),
            ("zero", &"00".repeat(32)),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
            }
            assert!(
                matches!(NodeKey::load(&path), Err(IdentityError::InvalidKey(_))),
                "{name}"
            );
        }
    }

    #[test]
    fn signatures_verify_under_the_public_key_only() {
        let key = NodeKey::generate();
        let other = NodeKey::generate();
        let signature = key.sign(b"prepare");
        assert!(verify(&key.public_key(), b"prepare", &signature));
        assert!(!verify(&key.public_key(), b"commit", &signature));
        assert!(!verify(&other.public_key(), b"prepare", &signature));
        assert_eq!(
            peer_id_of(&key.public_key()).expect("peer id"),
            key.peer_id()
        );
    }
}
