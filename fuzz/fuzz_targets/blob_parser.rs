//! The ciphertext-blob header parser on arbitrary bytes (what Decrypt and
//! ReEncrypt accept from any client): never panics, and a parsed header's
//! lengths stay inside the blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::blob::BlobHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BlobHeader::parse(data) {
        assert!(h.header_len <= data.len());
        assert!(!h.key_id.is_empty());
    }
});
