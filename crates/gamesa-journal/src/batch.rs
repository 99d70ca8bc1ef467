//! A batch's blobs: the ticks' inputs as one MessagePack array, and their decisions
//! as length-prefixed JSON documents, each compressed with zstd.

use crate::{JournalError, TickInputs};

/// zstd's default level: about 5× on journal batches at a few µs per tick.
const LEVEL: i32 = 3;

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

pub(crate) fn encode_decisions<'a>(
    decisions: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, JournalError> {
    let mut joined = Vec::new();
    for document in decisions {
        let length = u32::try_from(document.len()).map_err(|_| JournalError::Encode {
            what: "decisions",
            reason: format!("a tick's decisions take {} bytes", document.len()),
        })?;
        joined.extend_from_slice(&length.to_le_bytes());
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

pub(crate) fn decode_decisions(blob: &[u8]) -> Result<Vec<Vec<u8>>, JournalError> {
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
        if tail.len() < length {
            return Err(corrupt());
        }
        let (document, tail) = tail.split_at(length);
        documents.push(document.to_vec());
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
        let documents: [&[u8]; 3] = [b"{\"a\":1}", b"", b"[1,2,3]"];
        let blob = encode_decisions(documents).unwrap();
        let decoded = decode_decisions(&blob).unwrap();
        assert_eq!(decoded, documents.map(<[u8]>::to_vec));
    }

    #[test]
    fn a_damaged_blob_is_an_error_not_a_panic() {
        let blob = encode_decisions([b"{\"a\":1}".as_slice()]).unwrap();
        for cut in 0..blob.len() {
            assert!(decode_decisions(&blob[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_inputs(b"not zstd").is_err());
        let truncated_length = compress(&[9, 0, 0, 0, 1]).unwrap();
        assert!(matches!(
            decode_decisions(&truncated_length),
            Err(JournalError::Corrupt { .. })
        ));
    }
}
