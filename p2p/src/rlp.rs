//! The little RLP that ENRs need: byte strings and one flat list, with a
//! decoder that refuses every non-canonical or truncated form.

/// Why bytes are not valid RLP for an ENR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RlpError {
    /// The input ends inside an item.
    #[error("truncated")]
    Truncated,
    /// A length or single byte not in its shortest form.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// A list where a byte string was expected, or the reverse.
    #[error("unexpected item type")]
    UnexpectedType,
    /// Bytes after the outer list.
    #[error("trailing bytes")]
    Trailing,
}

/// Appends a byte string.
pub(crate) fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() == 1 && bytes[0] < 0x80 {
        out.push(bytes[0]);
    } else {
        encode_length(out, bytes.len(), 0x80);
        out.extend_from_slice(bytes);
    }
}

/// Appends an unsigned integer (big-endian, no leading zeros).
pub(crate) fn encode_uint(out: &mut Vec<u8>, value: u64) {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(8);
    encode_bytes(out, &bytes[first..]);
}

/// Wraps already-encoded items in a list.
pub(crate) fn encode_list(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    encode_length(&mut out, payload.len(), 0xc0);
    out.extend_from_slice(payload);
    out
}

fn encode_length(out: &mut Vec<u8>, len: usize, offset: u8) {
    if len < 56 {
        out.push(offset + len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
        out.push(offset + 55 + (8 - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
}

/// Decodes one list of byte strings that spans all of `input`.
pub(crate) fn decode_list_of_strings(input: &[u8]) -> Result<Vec<&[u8]>, RlpError> {
    let (is_list, payload, rest) = decode_item(input)?;
    if !is_list {
        return Err(RlpError::UnexpectedType);
    }
    if !rest.is_empty() {
        return Err(RlpError::Trailing);
    }
    let mut items = Vec::new();
    let mut remaining = payload;
    while !remaining.is_empty() {
        let (is_list, item, rest) = decode_item(remaining)?;
        if is_list {
            return Err(RlpError::UnexpectedType);
        }
        items.push(item);
        remaining = rest;
    }
    Ok(items)
}

/// Decodes a big-endian unsigned integer of at most 8 bytes without leading zeros.
pub(crate) fn decode_uint(bytes: &[u8]) -> Result<u64, RlpError> {
    if bytes.len() > 8 || bytes.first() == Some(&0) {
        return Err(RlpError::NonCanonical);
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// One item: (is it a list, its payload, what follows it).
fn decode_item(input: &[u8]) -> Result<(bool, &[u8], &[u8]), RlpError> {
    let (&prefix, rest) = input.split_first().ok_or(RlpError::Truncated)?;
    let (is_list, len, rest) = match prefix {
        0x00..=0x7f => return Ok((false, &input[..1], rest)),
        0x80..=0xb7 => {
            let len = usize::from(prefix - 0x80);
            if len == 1 && rest.first().is_some_and(|&b| b < 0x80) {
                return Err(RlpError::NonCanonical);
            }
            (false, len, rest)
        }
        0xb8..=0xbf => {
            let (len, rest) = long_length(rest, usize::from(prefix - 0xb7))?;
            (false, len, rest)
        }
        0xc0..=0xf7 => (true, usize::from(prefix - 0xc0), rest),
        0xf8..=0xff => {
            let (len, rest) = long_length(rest, usize::from(prefix - 0xf7))?;
            (true, len, rest)
        }
    };
    if rest.len() < len {
        return Err(RlpError::Truncated);
    }
    let (payload, rest) = rest.split_at(len);
    Ok((is_list, payload, rest))
}

fn long_length(input: &[u8], width: usize) -> Result<(usize, &[u8]), RlpError> {
    if input.len() < width {
        return Err(RlpError::Truncated);
    }
    let (bytes, rest) = input.split_at(width);
    let len = decode_uint(bytes)?;
    if len < 56 {
        return Err(RlpError::NonCanonical);
    }
    let len = usize::try_from(len).map_err(|_| RlpError::Truncated)?;
    Ok((len, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_lists_round_trip() {
        let long = vec![7u8; 300];
        let mut payload = Vec::new();
        encode_bytes(&mut payload, b"");
        encode_bytes(&mut payload, &[0x05]);
        encode_bytes(&mut payload, &[0x80]);
        encode_bytes(&mut payload, &long);
        encode_uint(&mut payload, 0);
        encode_uint(&mut payload, 30303);
        let list = encode_list(&payload);
        let items = decode_list_of_strings(&list).expect("decodes");
        assert_eq!(items[0], b"");
        assert_eq!(items[1], [0x05]);
        assert_eq!(items[2], [0x80]);
        assert_eq!(items[3], long.as_slice());
        assert_eq!(decode_uint(items[4]), Ok(0));
        assert_eq!(decode_uint(items[5]), Ok(30303));
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        // A single byte below 0x80 wrapped as a string.
        assert_eq!(
            decode_list_of_strings(&[0xc2, 0x81, 0x05]),
            Err(RlpError::NonCanonical)
        );
        // A short length written in the long form.
        assert_eq!(
            decode_list_of_strings(&[0xf8, 0x01, 0x05]),
            Err(RlpError::NonCanonical)
        );
        assert_eq!(decode_uint(&[0, 1]), Err(RlpError::NonCanonical));
        assert_eq!(
            decode_list_of_strings(&[0xc3, 0x82, 0x01]),
            Err(RlpError::Truncated)
        );
        assert_eq!(
            decode_list_of_strings(&[0xc0, 0x00]),
            Err(RlpError::Trailing)
        );
        assert_eq!(
            decode_list_of_strings(&[0xc1, 0xc0]),
            Err(RlpError::UnexpectedType)
        );
    }
}
