//! Fuzzes what the server does with bytes from a socket: split them into frames under
//! the size cap, then check and decode each frame's body as a request. Nothing may
//! panic, and a decoded request must encode and decode back to itself.
#![no_main]

use gamesa_wire::{decode_request, split_frame};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME_BYTES: u32 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // The input as one raw body.
    if let Ok((id, request)) = decode_request(data) {
        let mut again = Vec::new();
        request
            .encode(id, &mut again)
            .expect("a decoded request encodes");
        assert_eq!(decode_request(&again[4..]), Ok((id, request)));
    }
    // The input as a stream of frames.
    let mut rest = data;
    while let Ok(Some(total)) = split_frame(rest, MAX_FRAME_BYTES) {
        let _ = decode_request(&rest[4..total]);
        rest = &rest[total..];
    }
});
