//! Round trips of the message format in memory at the frame boundaries, and
//! detection of tampering, truncation and trailing data.

#![allow(clippy::unwrap_used)]

use super::header::{EncryptedDataKey, Header};
use super::keys::commitment_key;
use super::stream::{decrypt_body, encrypt};
use super::*;
use std::collections::BTreeMap;

fn header(data_key: &[u8; 32], frame_len: u32) -> Header {
    let message_id = [7u8; MESSAGE_ID_LEN];
    Header {
        suite: SUITE_COMMIT_KEY,
        message_id,
        context: BTreeMap::from([("purpose".into(), "test".into()), ("a".into(), "b".into())]),
        edks: vec![EncryptedDataKey {
            provider_id: PROVIDER_AWS_KMS.into(),
            provider_info: b"arn:aws:kms:us-east-1:111122223333:key/x".to_vec(),
            ciphertext: vec![1, 2, 3],
        }],
        frame_len,
        commitment: commitment_key(data_key, &message_id),
    }
}

fn seal(plain: &[u8], frame_len: u32) -> Vec<u8> {
    let dk = [9u8; 32];
    let mut out = Vec::new();
    encrypt(
        &mut &plain[..],
        &mut out,
        &header(&dk, frame_len),
        &dk,
        &mut |_| {},
    )
    .unwrap();
    out
}

fn open(msg: &[u8], dk: &[u8; 32]) -> Result<Vec<u8>, FormatError> {
    let mut r = msg;
    let (h, raw, tag) = Header::read(&mut r)?;
    let mut out = Vec::new();
    decrypt_body(&mut r, &mut out, &h, &raw, &tag, dk, &mut |_| {})?;
    Ok(out)
}

#[test]
fn round_trips_at_frame_boundaries() {
    for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 5] {
        let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let msg = seal(&plain, 4096);
        assert_eq!(open(&msg, &[9u8; 32]).unwrap(), plain, "len {len}");
        let (h, _, _) = Header::read(&mut &msg[..]).unwrap();
        assert_eq!(h, header(&[9u8; 32], 4096));
    }
}

#[test]
fn header_layout_is_version_2_committing_suite() {
    let msg = seal(b"x", 4096);
    assert_eq!(msg[0], 0x02);
    assert_eq!(&msg[1..3], &[0x04, 0x78]);
}

#[test]
fn every_flipped_byte_is_detected() {
    let msg = seal(&[5u8; 9000], 4096);
    for i in (0..msg.len()).step_by(7) {
        let mut bad = msg.clone();
        bad[i] ^= 0x01;
        assert!(open(&bad, &[9u8; 32]).is_err(), "flip at {i} not detected");
    }
}

#[test]
fn truncation_at_any_point_is_detected() {
    let msg = seal(&[5u8; 9000], 4096);
    for cut in (0..msg.len()).step_by(13) {
        assert!(open(&msg[..cut], &[9u8; 32]).is_err(), "cut at {cut}");
    }
    // Dropping exactly the final frame is truncation too.
    let one_frame = seal(&[5u8; 4096 * 2], 4096);
    let header_len = one_frame.len() - 2 * (4 + 12 + 4096 + 16) - 8;
    let cut = header_len + 4 + 12 + 4096 + 16;
    let err = open(&one_frame[..cut], &[9u8; 32]).unwrap_err();
    assert!(matches!(err, FormatError::Truncated(_)), "{err}");
}

#[test]
fn trailing_data_is_refused() {
    let mut msg = seal(b"hello", 4096);
    msg.push(0);
    assert!(matches!(
        open(&msg, &[9u8; 32]),
        Err(FormatError::TrailingData)
    ));
}

#[test]
fn wrong_data_key_fails_the_commitment() {
    let msg = seal(b"hello", 4096);
    assert!(matches!(
        open(&msg, &[8u8; 32]),
        Err(FormatError::Commitment)
    ));
}

#[test]
fn other_suites_and_versions_are_refused_clearly() {
    let mut msg = seal(b"hello", 4096);
    msg[2] = 0x78;
    msg[1] = 0x05;
    assert!(matches!(
        open(&msg, &[9u8; 32]),
        Err(FormatError::Suite(0x0578))
    ));
    msg[0] = 0x01;
    assert!(matches!(
        open(&msg, &[9u8; 32]),
        Err(FormatError::Version(1))
    ));
}
