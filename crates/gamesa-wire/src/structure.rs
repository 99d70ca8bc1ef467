//! The MessagePack structure check: a frame body is exactly one well-formed value, no
//! deeper than a small limit, whose every declared length fits in the bytes received.
//!
//! It runs before any decoding, walks the bytes without recursion and without
//! allocating, so hostile input (a billion-element array header, a string that claims
//! 4 GiB, ten thousand nested arrays) costs at most one pass over bytes already
//! received and is refused with a typed error.
//!
//! # Invariants
//! - `top_level_u64` never panics, allocates or recurses, whatever the input
//! - `check_structure(b, d)` is `Ok` only if `b` holds exactly one complete value whose
//!   containers nest at most `d` deep (a scalar is depth 0, `[]` and `{}` depth 1)
//! - it never panics and never allocates, whatever the input

use thiserror::Error;

/// Why a frame body is not one acceptable MessagePack value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StructureError {
    /// The bytes end inside a value (or the body is empty).
    #[error("the MessagePack value is truncated at byte {at}")]
    Truncated { at: usize },
    /// The byte 0xc1, which MessagePack never uses.
    #[error("byte {at} is 0xc1, which is not a MessagePack marker")]
    InvalidMarker { at: usize },
    /// More bytes follow the value.
    #[error("{extra} bytes follow the MessagePack value")]
    TrailingBytes { extra: usize },
    /// Containers nest deeper than the limit.
    #[error("MessagePack nesting deeper than {max} levels")]
    TooDeep { max: usize },
}

/// The deepest nesting the walk can track; limits above it are treated as this.
const STACK: usize = 64;

/// Checks that `bytes` is exactly one MessagePack value nested at most `max_depth` deep.
pub fn check_structure(bytes: &[u8], max_depth: usize) -> Result<(), StructureError> {
    let max_depth = max_depth.min(STACK);
    // remaining[d] = values still expected in the container open at depth d + 1.
    let mut remaining = [0u64; STACK];
    let mut depth = 0usize;
    let mut at = 0usize;
    // Values still expected at the top level: exactly one.
    let mut top = 1u64;
    loop {
        // Close every finished container.
        while depth > 0 && remaining[depth - 1] == 0 {
            depth -= 1;
        }
        let expected = if depth == 0 {
            &mut top
        } else {
            &mut remaining[depth - 1]
        };
        if *expected == 0 {
            break;
        }
        *expected -= 1;
        let (size, children) = value_header(bytes, at)?;
        at = at
            .checked_add(size)
            .ok_or(StructureError::Truncated { at })?;
        if at > bytes.len() {
            return Err(StructureError::Truncated { at: bytes.len() });
        }
        if let Some(children) = children {
            if depth >= max_depth {
                return Err(StructureError::TooDeep { max: max_depth });
            }
            // Each child takes at least one byte: a count beyond what is left is a lie,
            // refused now rather than walked.
            if children > (bytes.len() - at) as u64 {
                return Err(StructureError::Truncated { at: bytes.len() });
            }
            remaining[depth] = children;
            depth += 1;
        }
    }
    if at < bytes.len() {
        return Err(StructureError::TrailingBytes {
            extra: bytes.len() - at,
        });
    }
    Ok(())
}

/// The unsigned integer under `key` in the map that `bytes` starts with, read without
/// decoding anything else: `None` when `bytes` does not start with a map, the key is
/// absent, its value is not a non-negative integer, or the bytes end before it.
///
/// What comes after the key, and the values before it, need not be sound: they are
/// skipped by their declared sizes, at any depth and without recursion. This is how an
/// error reply keeps the id of a request that is too deep or malformed further on.
pub fn top_level_u64(bytes: &[u8], key: &str) -> Option<u64> {
    let (size, children) = value_header(bytes, 0).ok()?;
    let marker = bytes[0];
    let is_map = matches!(marker, 0x80..=0x8f | 0xde | 0xdf);
    let mut pairs = if is_map { children? / 2 } else { return None };
    let mut at = size;
    while pairs > 0 {
        pairs -= 1;
        let key_end = skip_value(bytes, at)?;
        let is_key = string_at(bytes, at).is_some_and(|found| found == key.as_bytes());
        if is_key {
            return unsigned_at(bytes, key_end);
        }
        at = skip_value(bytes, key_end)?;
    }
    None
}

/// Where the value at `at` ends, children included; `None` when the bytes end first.
fn skip_value(bytes: &[u8], mut at: usize) -> Option<usize> {
    // Values still to skip: the one at `at`, then every child a header announces.
    let mut pending = 1u64;
    while pending > 0 {
        pending -= 1;
        let (size, children) = value_header(bytes, at).ok()?;
        at = at.checked_add(size).filter(|end| *end <= bytes.len())?;
        if let Some(children) = children {
            // Each child takes at least one byte.
            if children > (bytes.len() - at) as u64 {
                return None;
            }
            pending += children;
        }
    }
    Some(at)
}

/// The bytes of the string at `at`, if a whole string is there.
fn string_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let marker = *bytes.get(at)?;
    let (start, length) = match marker {
        0xa0..=0xbf => (at + 1, usize::from(marker & 0x1f)),
        0xd9 => (at + 2, usize::from(*bytes.get(at + 1)?)),
        0xda => (
            at + 3,
            usize::from(u16::from_be_bytes(
                bytes.get(at + 1..at + 3)?.try_into().ok()?,
            )),
        ),
        0xdb => (
            at + 5,
            usize::try_from(u32::from_be_bytes(
                bytes.get(at + 1..at + 5)?.try_into().ok()?,
            ))
            .ok()?,
        ),
        _ => return None,
    };
    bytes.get(start..start.checked_add(length)?)
}

/// The non-negative integer at `at`, in any MessagePack integer encoding.
fn unsigned_at(bytes: &[u8], at: usize) -> Option<u64> {
    let marker = *bytes.get(at)?;
    let field = |width: usize| bytes.get(at + 1..at + 1 + width);
    let unsigned = |width: usize| {
        field(width).map(|field| {
            field
                .iter()
                .fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
        })
    };
    let signed = |width: usize| {
        let value = unsigned(width)?;
        let shift = 64 - 8 * width as u32;
        let value = ((value << shift) as i64) >> shift;
        u64::try_from(value).ok()
    };
    match marker {
        0x00..=0x7f => Some(u64::from(marker)),
        0xcc => unsigned(1),
        0xcd => unsigned(2),
        0xce => unsigned(4),
        0xcf => unsigned(8),
        0xd0 => signed(1),
        0xd1 => signed(2),
        0xd2 => signed(4),
        0xd3 => signed(8),
        _ => None,
    }
}

/// The size of the value's own bytes at `at` (marker, length, payload; not its
/// children) and, for a container, how many child values follow.
fn value_header(bytes: &[u8], at: usize) -> Result<(usize, Option<u64>), StructureError> {
    let truncated = StructureError::Truncated { at: bytes.len() };
    let marker = *bytes.get(at).ok_or(truncated)?;
    let length = |width: usize| -> Result<u64, StructureError> {
        let start = at + 1;
        let field = bytes.get(start..start + width).ok_or(truncated)?;
        Ok(field
            .iter()
            .fold(0u64, |value, byte| (value << 8) | u64::from(*byte)))
    };
    // (bytes of the header and payload, children)
    let (size, children): (u64, Option<u64>) = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, None),
        0x80..=0x8f => (1, Some(2 * u64::from(marker & 0x0f))),
        0x90..=0x9f => (1, Some(u64::from(marker & 0x0f))),
        0xa0..=0xbf => (1 + u64::from(marker & 0x1f), None),
        0xc1 => return Err(StructureError::InvalidMarker { at }),
        // bin 8/16/32, str 8/16/32
        0xc4 | 0xd9 => (2 + length(1)?, None),
        0xc5 | 0xda => (3 + length(2)?, None),
        0xc6 | 0xdb => (5 + length(4)?, None),
        // ext 8/16/32: length, then a type byte, then the data
        0xc7 => (3 + length(1)?, None),
        0xc8 => (4 + length(2)?, None),
        0xc9 => (6 + length(4)?, None),
        // float 32/64, uint 8..64, int 8..64
        0xca => (5, None),
        0xcb => (9, None),
        0xcc | 0xd0 => (2, None),
        0xcd | 0xd1 => (3, None),
        0xce | 0xd2 => (5, None),
        0xcf | 0xd3 => (9, None),
        // fixext 1/2/4/8/16: a type byte and the data
        0xd4 => (3, None),
        0xd5 => (4, None),
        0xd6 => (6, None),
        0xd7 => (10, None),
        0xd8 => (18, None),
        // array 16/32, map 16/32
        0xdc => (3, Some(length(2)?)),
        0xdd => (5, Some(length(4)?)),
        0xde => (3, Some(2 * length(2)?)),
        0xdf => (5, Some(2 * length(4)?)),
    };
    let size = usize::try_from(size).map_err(|_| truncated)?;
    Ok((size, children))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x91; depth];
        bytes.push(0x01);
        bytes
    }

    #[test]
    fn scalars_maps_and_arrays_pass() {
        for bytes in [
            vec![0x01],
            vec![0xc0],
            vec![0x80],
            vec![0x90],
            vec![0x81, 0xa1, b'a', 0x92, 0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0xd9, 2, b'h', b'i'],
        ] {
            assert_eq!(check_structure(&bytes, 16), Ok(()), "{bytes:x?}");
        }
    }

    #[test]
    fn depth_is_limited() {
        assert_eq!(check_structure(&nested_arrays(16), 16), Ok(()));
        assert_eq!(
            check_structure(&nested_arrays(17), 16),
            Err(StructureError::TooDeep { max: 16 })
        );
        assert_eq!(
            check_structure(&nested_arrays(100_000), 16),
            Err(StructureError::TooDeep { max: 16 })
        );
    }

    #[test]
    fn lies_about_lengths_are_truncation() {
        // A str32 that claims 4 GiB.
        assert!(matches!(
            check_structure(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'], 16),
            Err(StructureError::Truncated { .. })
        ));
        // An array32 that claims 4 billion elements.
        assert!(matches!(
            check_structure(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01], 16),
            Err(StructureError::Truncated { .. })
        ));
        assert!(matches!(
            check_structure(&[], 16),
            Err(StructureError::Truncated { .. })
        ));
        assert!(matches!(
            check_structure(&[0x82, 0x01], 16),
            Err(StructureError::Truncated { .. })
        ));
    }

    #[test]
    fn extra_bytes_and_bad_markers_are_refused() {
        assert_eq!(
            check_structure(&[0x01, 0x02], 16),
            Err(StructureError::TrailingBytes { extra: 1 })
        );
        assert_eq!(
            check_structure(&[0x91, 0xc1], 16),
            Err(StructureError::InvalidMarker { at: 1 })
        );
    }

    /// `{"id": 7, ...rest}` as a map of `1 + extra` pairs.
    fn map_with_id_then(extra_pairs: u8, rest: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x80 | (1 + extra_pairs), 0xa2, b'i', b'd', 0x07];
        bytes.extend_from_slice(rest);
        bytes
    }

    #[test]
    fn the_id_is_read_even_when_what_follows_is_unsound() {
        // Too deep after the id.
        let mut deep = vec![0xa1, b'x'];
        deep.extend(std::iter::repeat_n(0x91, 40));
        deep.push(0x01);
        let body = map_with_id_then(1, &deep);
        assert_eq!(
            check_structure(&body, 16),
            Err(StructureError::TooDeep { max: 16 })
        );
        assert_eq!(top_level_u64(&body, "id"), Some(7));
        // Malformed after the id: a bad marker, a truncation, trailing bytes.
        for rest in [&[0xa1, b'x', 0xc1][..], &[0xa1, b'x', 0xdb, 0xff], &[]] {
            assert_eq!(top_level_u64(&map_with_id_then(1, rest), "id"), Some(7));
        }
        let mut trailing = map_with_id_then(0, &[]);
        trailing.push(0x01);
        assert_eq!(top_level_u64(&trailing, "id"), Some(7));
        // Deep before the id: skipped by its sizes.
        let mut before = vec![0x82, 0xa1, b'x'];
        before.extend(std::iter::repeat_n(0x91, 40));
        before.extend([0x01, 0xa2, b'i', b'd', 0xcd, 0x01, 0x00]);
        assert_eq!(top_level_u64(&before, "id"), Some(256));
    }

    #[test]
    fn an_id_that_cannot_be_read_is_none() {
        // Not a map; no id; an id that is a string, negative, or cut short.
        assert_eq!(top_level_u64(&[0x93, 1, 2, 3], "id"), None);
        assert_eq!(top_level_u64(&[0x81, 0xa1, b'x', 0x01], "id"), None);
        assert_eq!(
            top_level_u64(&[0x81, 0xa2, b'i', b'd', 0xa1, b'7'], "id"),
            None
        );
        assert_eq!(top_level_u64(&[0x81, 0xa2, b'i', b'd', 0xff], "id"), None);
        assert_eq!(
            top_level_u64(&[0x81, 0xa2, b'i', b'd', 0xcf, 0x00], "id"),
            None
        );
        assert_eq!(top_level_u64(&[0x81, 0xa2, b'i'], "id"), None);
        assert_eq!(top_level_u64(&[], "id"), None);
        // Signed encodings of a non-negative value are read.
        assert_eq!(
            top_level_u64(&[0x81, 0xa2, b'i', b'd', 0xd1, 0x01, 0x00], "id"),
            Some(256)
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = check_structure(&bytes, 16);
            let _ = top_level_u64(&bytes, "id");
        }

        #[test]
        fn reads_the_id_of_any_sound_request_map(id in any::<u64>(), filler in 0u8..5) {
            let mut pairs: Vec<(rmpv::Value, rmpv::Value)> = (0..filler)
                .map(|index| (format!("f{index}").into(), vec![rmpv::Value::from(index)].into()))
                .collect();
            pairs.insert(usize::from(filler / 2), ("id".into(), id.into()));
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &rmpv::Value::Map(pairs)).unwrap();
            prop_assert_eq!(top_level_u64(&bytes, "id"), Some(id));
        }

        #[test]
        fn agrees_with_rmpv_on_random_values(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Whatever passes the check decodes as exactly one value.
            if check_structure(&bytes, 16).is_ok() {
                let mut reader = bytes.as_slice();
                prop_assert!(rmpv::decode::read_value(&mut reader).is_ok());
                prop_assert!(reader.is_empty());
            }
        }
    }
}
