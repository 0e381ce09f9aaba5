//! Message bodies (postcard) on arbitrary bytes: decoding a request, a reply
//! or a hello never panics, and a decoded request re-encodes and decodes to
//! a frame of the same operation (postcard is malleable, so bytes may differ).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{ClientHello, RequestFrame, ResponseFrame, ServerHello, decode_body, encode_frame};

fuzz_target!(|data: &[u8]| {
    let _ = decode_body::<ClientHello>(data);
    let _ = decode_body::<ServerHello>(data);
    let _ = decode_body::<ResponseFrame>(data);
    if let Ok(frame) = decode_body::<RequestFrame>(data) {
        let name = frame.request.name();
        if let Ok(encoded) = encode_frame(&frame) {
            let again: RequestFrame = decode_body(&encoded[4..]).expect("re-decodes");
            assert_eq!(again.request.name(), name);
            assert_eq!(again.id, frame.id);
        }
    }
});
