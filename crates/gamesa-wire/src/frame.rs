//! Framing: each frame is a 4-byte big-endian length, then that many bytes of one
//! MessagePack value. The length is checked against the receiver's maximum before a
//! single byte of the body is buffered.
//!
//! # Invariants
//! - [`split_frame`] never asks for more than `4 + max` bytes: a length over `max` is an
//!   error as soon as the 4 header bytes are in
//! - [`encode_frame`] writes a header equal to the body's length

use std::io::{self, Read, Write};

use serde::Serialize;
use thiserror::Error;

/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;

/// A frame that cannot be read or written.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The length prefix is over the maximum; the connection cannot be resynchronised.
    #[error("frame of {length} bytes is over the {max}-byte limit")]
    TooLarge { length: u64, max: u32 },
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated { expected: usize, got: usize },
    /// The message could not be encoded as MessagePack.
    #[error("cannot encode the message: {0}")]
    Encode(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The body length a header announces, refused when it is over `max`.
pub fn body_length(header: [u8; HEADER_BYTES], max: u32) -> Result<usize, FrameError> {
    let length = u32::from_be_bytes(header);
    if length > max {
        return Err(FrameError::TooLarge {
            length: u64::from(length),
            max,
        });
    }
    // A u32 always fits in usize on the 32- and 64-bit targets GAMESA supports.
    Ok(length as usize)
}

/// Finds the first complete frame at the start of `buffer`: `Ok(Some(total))` when
/// `buffer[..total]` holds it (the body is `buffer[4..total]`), `Ok(None)` when more
/// bytes are needed, and an error when the header announces more than `max`.
pub fn split_frame(buffer: &[u8], max: u32) -> Result<Option<usize>, FrameError> {
    let Some(header) = buffer.first_chunk::<HEADER_BYTES>() else {
        return Ok(None);
    };
    let total = HEADER_BYTES + body_length(*header, max)?;
    Ok((buffer.len() >= total).then_some(total))
}

/// Appends one frame holding `message`, as a MessagePack map with named fields.
pub fn encode_frame<T: Serialize + ?Sized>(
    message: &T,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    // Human-readable: correlation ids (UUIDs) go as strings, which every client reads.
    let mut serializer = rmp_serde::Serializer::new(&mut *out)
        .with_struct_map()
        .with_human_readable();
    if let Err(error) = message.serialize(&mut serializer) {
        out.truncate(start);
        return Err(FrameError::Encode(error.to_string()));
    }
    let Ok(length) = u32::try_from(out.len() - start - HEADER_BYTES) else {
        let length = (out.len() - start - HEADER_BYTES) as u64;
        out.truncate(start);
        return Err(FrameError::TooLarge {
            length,
            max: u32::MAX,
        });
    };
    out[start..start + HEADER_BYTES].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Reads one frame's body into `body` (replacing its contents). `Ok(false)` on a clean
/// end of stream before a header; a stream that ends inside a frame is an error.
pub fn read_frame(
    reader: &mut impl Read,
    max: u32,
    body: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    let got = read_full(reader, &mut header)?;
    if got == 0 {
        return Ok(false);
    }
    if got < HEADER_BYTES {
        return Err(FrameError::Truncated {
            expected: HEADER_BYTES,
            got,
        });
    }
    let length = body_length(header, max)?;
    body.clear();
    body.resize(length, 0);
    let got = read_full(reader, body)?;
    if got < length {
        return Err(FrameError::Truncated {
            expected: length,
            got,
        });
    }
    Ok(true)
}

/// Reads until `buffer` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Writes `message` as one frame.
pub fn write_frame<T: Serialize + ?Sized>(
    writer: &mut impl Write,
    message: &T,
) -> Result<(), FrameError> {
    let mut bytes = Vec::with_capacity(128);
    encode_frame(message, &mut bytes)?;
    writer.write_all(&bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let mut bytes = Vec::new();
        encode_frame(&("hi", 7u8), &mut bytes).unwrap();
        assert_eq!(split_frame(&bytes, 64).unwrap(), Some(bytes.len()));
        assert_eq!(split_frame(&bytes[..bytes.len() - 1], 64).unwrap(), None);
        let mut body = Vec::new();
        assert!(read_frame(&mut bytes.as_slice(), 64, &mut body).unwrap());
        assert_eq!(body, &bytes[4..]);
    }

    #[test]
    fn the_cap_is_checked_on_the_header_alone() {
        let header = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            split_frame(&header, 65_536),
            Err(FrameError::TooLarge {
                length: 4_294_967_295,
                max: 65_536
            })
        ));
        let mut body = Vec::new();
        assert!(matches!(
            read_frame(&mut header.as_slice(), 65_536, &mut body),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(body.capacity(), 0, "nothing was allocated for the body");
    }

    #[test]
    fn a_stream_that_ends_inside_a_frame_is_truncated() {
        let mut body = Vec::new();
        assert!(!read_frame(&mut [].as_slice(), 64, &mut body).unwrap());
        assert!(matches!(
            read_frame(&mut [0, 0].as_slice(), 64, &mut body),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            read_frame(&mut [0, 0, 0, 5, 1].as_slice(), 64, &mut body),
            Err(FrameError::Truncated {
                expected: 5,
                got: 1
            })
        ));
    }
}
