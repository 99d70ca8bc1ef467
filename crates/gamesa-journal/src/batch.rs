//! A batch's blobs: the ticks' inputs as one MessagePack array, and their decisions
//! as documents (a length, the digest, the kept decisions' JSON), each compressed
//! with zstd.

use crate::{JournalError, TickInputs};

/// Measured on journal batches (`docs/performance.md`): level 12 takes the
/// decisions of a busy market to about a third of level 3's size, for a few hundred
/// µs of the writer thread per tick, off the tick's.
const LEVEL: i32 = 12;

/// A decoded batch is refused above this size rather than exhausting memory on a
/// corrupt length.
const MAX_DECODED: usize = 512 << 20;

pub(crate) fn encode_inputs(inputs: &[TickInputs]) -> Result<Vec<u8>, JournalError> {
    let packed = rmp_serde::to_vec_named(inputs).map_err(|error| JournalError::Encode {
        what: "tick inputs",
        reason: error.to_string(),
    })?;
    compress(&packed)
}

/// Each tick's decisions: their digest and their kept JSON.
pub(crate) fn encode_decisions<'a>(
    decisions: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> Result<Vec<u8>, JournalError> {
    let mut joined = Vec::new();
    for (digest, document) in decisions {
        let length = u32::try_from(document.len()).map_err(|_| JournalError::Encode {
            what: "decisions",
            reason: format!("a tick's decisions take {} bytes", document.len()),
        })?;
        joined.extend_from_slice(&length.to_le_bytes());
        joined.extend_from_slice(&digest.to_le_bytes());
        joined.extend_from_slice(document);
    }
    compress(&joined)
}

pub(crate) fn decode_inputs(blob: &[u8]) -> Result<Vec<TickInputs>, JournalError> {
    let packed = decompress(blob, "tick inputs")?;
    rmp_serde::from_slice(&packed).map_err(|error| JournalError::Corrupt {
        what: "tick inputs",
        reason: error.to_string(),
    })
}

pub(crate) fn decode_decisions(blob: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
    let joined = decompress(blob, "decisions")?;
    let mut documents = Vec::new();
    let mut rest = joined.as_slice();
    while !rest.is_empty() {
        let corrupt = || JournalError::Corrupt {
            what: "decisions",
            reason: "a document runs past the end of its batch".to_owned(),
        };
        let (length, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let length = u32::from_le_bytes(*length) as usize;
        let (digest, tail) = tail.split_first_chunk::<8>().ok_or_else(corrupt)?;
        if tail.len() < length {
            return Err(corrupt());
        }
        let (document, tail) = tail.split_at(length);
        documents.push((u64::from_le_bytes(*digest), document.to_vec()));
        rest = tail;
    }
    Ok(documents)
}

fn compress(bytes: &[u8]) -> Result<Vec<u8>, JournalError> {
    zstd::bulk::compress(bytes, LEVEL).map_err(|error| JournalError::Encode {
        what: "batch",
        reason: error.to_string(),
    })
}

fn decompress(blob: &[u8], what: &'static str) -> Result<Vec<u8>, JournalError> {
    let corrupt = |reason: String| JournalError::Corrupt { what, reason };
    let size = match zstd::zstd_safe::get_frame_content_size(blob) {
        Ok(Some(size)) => usize::try_from(size).unwrap_or(usize::MAX),
        _ => return Err(corrupt("not a zstd frame with a known size".to_owned())),
    };
    if size > MAX_DECODED {
        return Err(corrupt(format!("claims {size} bytes decoded")));
    }
    zstd::bulk::decompress(blob, size).map_err(|error| corrupt(error.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn decisions_round_trip_through_a_batch() {
        let documents: [(u64, &[u8]); 3] = [(1, b"{\"a\":1}"), (u64::MAX, b""), (7, b"[1,2,3]")];
        let blob = encode_decisions(documents).unwrap();
        let decoded = decode_decisions(&blob).unwrap();
        assert_eq!(
            decoded,
            documents.map(|(digest, document)| (digest, document.to_vec()))
        );
    }

    #[test]
    fn a_damaged_blob_is_an_error_not_a_panic() {
        let blob = encode_decisions([(1, b"{\"a\":1}".as_slice())]).unwrap();
        for cut in 0..blob.len() {
            assert!(decode_decisions(&blob[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_inputs(b"not zstd").is_err());
        let truncated_length = compress(&[9, 0, 0, 0, 1, 2]).unwrap();
        assert!(matches!(
            decode_decisions(&truncated_length),
            Err(JournalError::Corrupt { .. })
        ));
    }
}
