//! Framing on a stream (a 4-byte big-endian length, checked against the
//! protocol's limit before a byte of the body is read) and the serde +
//! bincode encoding of messages, with the same limit applied when decoding.

use bincode::Options;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a frame or message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The announced length exceeds the protocol's limit; nothing was read or allocated.
    #[error("message of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The announced or actual length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// The stream failed or ended early.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid encoding of the message type.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// The receiver's answer to a message, one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Queued for the consumer.
    Accepted = 0,
    /// The per-peer queue is full; the message was dropped.
    QueueFull = 1,
    /// Larger than the protocol allows; not read.
    TooLarge = 2,
    /// The sender is not (yet) a verified operator of this cluster.
    Unverified = 3,
}

impl Status {
    pub(crate) fn from_byte(byte: u8) -> Option<Status> {
        match byte {
            0 => Some(Status::Accepted),
            1 => Some(Status::QueueFull),
            2 => Some(Status::TooLarge),
            3 => Some(Status::Unverified),
            _ => None,
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::QueueFull => "queue_full",
            Status::TooLarge => "too_large",
            Status::Unverified => "unverified",
        }
    }
}

/// Writes one length-prefixed frame.
pub(crate) async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    body: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// Reads a frame's length and checks it against `limit` before reading on.
pub(crate) async fn read_frame_len<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> Result<usize, CodecError> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await?;
    frame_len(prefix, limit)
}

/// The length a frame's prefix announces, checked against `limit`.
pub(crate) fn frame_len(prefix: [u8; 4], limit: usize) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(prefix);
    if len as usize > limit {
        return Err(CodecError::TooLarge {
            len: u64::from(len),
            limit,
        });
    }
    Ok(len as usize)
}

/// Reads a frame's body of a length already checked.
pub(crate) async fn read_frame_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    len: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads and drops a frame's body of a length already checked, a few
/// KiB at a time: a refused message's bytes are never stored.
pub(crate) async fn skip_frame_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    len: usize,
) -> Result<(), CodecError> {
    let mut scratch = [0u8; 4096];
    let mut left = len;
    while left > 0 {
        let chunk = left.min(scratch.len());
        stream.read_exact(&mut scratch[..chunk]).await?;
        left -= chunk;
    }
    Ok(())
}

/// Reads a whole frame of at most `limit` bytes.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    let len = read_frame_len(stream, limit).await?;
    read_frame_body(stream, len).await
}

fn options(limit: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(limit as u64)
        .with_fixint_encoding()
        .reject_trailing_bytes()
}

/// Encodes a message, refusing one larger than `limit`.
pub fn encode<T: Serialize>(value: &T, limit: usize) -> Result<Vec<u8>, CodecError> {
    options(limit).serialize(value).map_err(|e| match *e {
        bincode::ErrorKind::SizeLimit => CodecError::TooLarge {
            len: options(usize::MAX >> 1)
                .serialized_size(value)
                .unwrap_or(u64::MAX),
            limit,
        },
        other => CodecError::Malformed(other.to_string()),
    })
}

/// The length of a message's encoding, as [`encode`] would write it.
pub fn encoded_len<T: Serialize>(value: &T) -> u64 {
    options(usize::MAX >> 1)
        .serialized_size(value)
        .unwrap_or(u64::MAX)
}

/// Decodes a message of at most `limit` bytes; no length inside it can
/// make the decoder allocate more than the limit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    decode_borrowed(bytes, limit)
}

/// [`decode`], for a message that may borrow from `bytes` (a value's bytes
/// read in place rather than copied).
pub fn decode_borrowed<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    limit: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len() as u64,
            limit,
        });
    }
    options(limit)
        .deserialize(bytes)
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        slot: u64,
        data: Vec<u8>,
        note: String,
    }

    #[test]
    fn messages_round_trip_within_the_limit() {
        let sample = Sample {
            slot: 7,
            data: vec![1, 2, 3],
            note: "x".into(),
        };
        let bytes = encode(&sample, 1024).expect("encode");
        assert_eq!(decode::<Sample>(&bytes, 1024).expect("decode"), sample);
        assert!(matches!(
            encode(&sample, 8),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(matches!(
            decode::<Sample>(&bytes, 8),
            Err(CodecError::TooLarge { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<Sample>(&trailing, 1024).is_err());
    }

    #[test]
    fn a_huge_announced_length_is_refused_without_allocating() {
        // slot, then a Vec claiming 2^60 elements.
        let mut bytes = 7u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode::<Sample>(&bytes, 1 << 20).is_err());
    }

    #[tokio::test]
    async fn frames_over_the_limit_are_refused_before_the_body() {
        let mut wire = Vec::new();
        write_frame(&mut futures::io::Cursor::new(&mut wire), &[9u8; 100])
            .await
            .expect("write");
        let mut reader = futures::io::Cursor::new(wire.clone());
        let error = read_frame(&mut reader, 50).await.expect_err("too large");
        assert!(matches!(
            error,
            CodecError::TooLarge {
                len: 100,
                limit: 50
            }
        ));
        assert_eq!(reader.position(), 4, "only the length was read");
        let mut reader = futures::io::Cursor::new(wire);
        assert_eq!(
            read_frame(&mut reader, 100).await.expect("fits"),
            vec![9u8; 100]
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_frames_never_read_past_their_limit(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            limit in 0usize..256,
        ) {
            let mut reader = futures::io::Cursor::new(bytes.clone());
            let result = futures::executor::block_on(read_frame(&mut reader, limit));
            match result {
                Ok(body) => {
                    proptest::prop_assert!(body.len() <= limit);
                    proptest::prop_assert_eq!(&bytes[4..4 + body.len()], body.as_slice());
                }
                Err(CodecError::TooLarge { .. }) => {
                    proptest::prop_assert_eq!(reader.position(), 4, "the body was not read");
                }
                Err(_) => {}
            }
        }
    }
}
