//! Unit tests of tokens and blobs, including RFC 5649's own vectors.

use super::*;
use protocol::WireError;

const MASTER: [u8; 32] = [7; 32];
const CMK: [u8; 32] = [9; 32];

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn key_ref(id: &str, version: u32, token: KeyToken) -> KeyRef {
    KeyRef {
        key_id: id.into(),
        version,
        token,
    }
}

fn ctx(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn wire(r: Result<impl Sized, DaemonError>) -> WireError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_wire(),
    }
}

#[test]
fn rfc5649_vectors() {
    // RFC 5649 section 6, with a 192-bit KEK: the same aes-kw code path as the
    // AES-256 KEK the daemon uses.
    let kek = aes_kw::KekAes192::try_from(
        hex("5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8").as_slice(),
    )
    .expect("kek");
    let k20 = hex("c37b7e6492584340 bed1220780894115 5068f738");
    let w20 = hex("138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a");
    assert_eq!(kek.wrap_with_padding_vec(&k20).expect("wrap"), w20);
    assert_eq!(kek.unwrap_with_padding_vec(&w20).expect("unwrap"), k20);
    let k7 = hex("466f7250617369");
    let w7 = hex("afbeb0f07dfbf541 9200f2ccb50bb24f");
    assert_eq!(kek.wrap_with_padding_vec(&k7).expect("wrap"), w7);
    assert_eq!(kek.unwrap_with_padding_vec(&w7).expect("unwrap"), k7);
}

#[test]
fn token_round_trips() {
    let token = wrap_token(&MASTER, 1, "key-1", 3, KeySpec::SymmetricDefault, &CMK).expect("wrap");
    let mut out = [0u8; 32];
    unwrap_token(
        &MASTER,
        &key_ref("key-1", 3, token),
        KeySpec::SymmetricDefault,
        &mut out,
    )
    .expect("unwrap");
    assert_eq!(out, CMK);
}

#[test]
fn token_for_another_id_or_version_is_rejected() {
    let token = wrap_token(&MASTER, 1, "key-1", 3, KeySpec::SymmetricDefault, &CMK).expect("wrap");
    let mut out = [0u8; 32];
    for r in [
        key_ref("key-2", 3, token.clone()),
        key_ref("key-1", 4, token.clone()),
        key_ref("key-", 3, token.clone()),
    ] {
        assert_eq!(
            wire(unwrap_token(
                &MASTER,
                &r,
                KeySpec::SymmetricDefault,
                &mut out
            )),
            WireError::InvalidToken
        );
    }
    assert_eq!(out, [0; 32], "nothing copied out on failure");
}

#[test]
fn token_under_another_master_or_tampered_is_rejected() {
    let token = wrap_token(&MASTER, 1, "k", 1, KeySpec::SymmetricDefault, &CMK).expect("wrap");
    let mut out = [0u8; 32];
    let other = [8u8; 32];
    assert_eq!(
        wire(unwrap_token(
            &other,
            &key_ref("k", 1, token.clone()),
            KeySpec::SymmetricDefault,
            &mut out
        )),
        WireError::InvalidToken
    );
    let mut bad = token.clone();
    bad.0[5] ^= 1;
    assert_eq!(
        wire(unwrap_token(
            &MASTER,
            &key_ref("k", 1, bad),
            KeySpec::SymmetricDefault,
            &mut out
        )),
        WireError::InvalidToken
    );
    for garbage in [vec![], vec![0; 7], vec![0; 24], vec![1; 100]] {
        assert_eq!(
            wire(unwrap_token(
                &MASTER,
                &key_ref("k", 1, KeyToken(garbage)),
                KeySpec::SymmetricDefault,
                &mut out
            )),
            WireError::InvalidToken
        );
    }
}

#[test]
fn bad_key_ids_are_refused() {
    let long = "x".repeat(65);
    for id in ["", long.as_str()] {
        assert_eq!(
            wire(wrap_token(
                &MASTER,
                1,
                id,
                1,
                KeySpec::SymmetricDefault,
                &CMK
            )),
            WireError::InvalidRequest(InvalidReason::BadKeyId)
        );
    }
}

fn sealed() -> (KeyRef, Vec<u8>) {
    let r = key_ref("key-1", 2, KeyToken(vec![]));
    let blob = seal(
        &CMK,
        "key-1",
        2,
        b"attack at dawn",
        &ctx(&[("b", "2"), ("a", "1")]),
    )
    .expect("seal");
    (r, blob)
}

#[test]
fn blob_round_trips_with_context_in_any_order() {
    let (r, blob) = sealed();
    let plain = open(&CMK, &r, &blob, &ctx(&[("a", "1"), ("b", "2")])).expect("open");
    assert_eq!(plain.as_slice(), b"attack at dawn");
    let h = BlobHeader::parse(&blob).expect("header");
    assert_eq!((h.key_id, h.key_version), ("key-1", 2));
    assert_eq!(blob.len(), h.header_len + 14 + TAG_LEN);
}

#[test]
fn two_seals_differ() {
    let (_, a) = sealed();
    let (_, b) = sealed();
    assert_ne!(a, b);
}

#[test]
fn tampering_anywhere_is_invalid_ciphertext() {
    let (r, blob) = sealed();
    let good = ctx(&[("a", "1"), ("b", "2")]);
    let h = BlobHeader::parse(&blob).expect("header").header_len;
    // Header fields other than key id/version (which fail the key check), the
    // body and the tag.
    for i in [0, h - 1, h - 13, h, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            wire(open(&CMK, &r, &bad, &good)),
            WireError::InvalidCiphertext,
            "byte {i}"
        );
    }
    assert_eq!(
        wire(open(&CMK, &r, &blob[..blob.len() - 1], &good)),
        WireError::InvalidCiphertext
    );
    assert_eq!(
        wire(open(&CMK, &r, &[], &good)),
        WireError::InvalidCiphertext
    );
}

#[test]
fn wrong_or_missing_context_is_invalid_ciphertext() {
    let (r, blob) = sealed();
    for c in [
        ctx(&[]),
        ctx(&[("a", "1")]),
        ctx(&[("a", "1"), ("b", "3")]),
        ctx(&[("a", "1"), ("b", "2"), ("c", "")]),
        ctx(&[("a", "12")]),
    ] {
        assert_eq!(
            wire(open(&CMK, &r, &blob, &c)),
            WireError::InvalidCiphertext
        );
    }
}

#[test]
fn bad_context_is_invalid_request() {
    let bad = WireError::InvalidRequest(InvalidReason::BadEncryptionContext);
    for c in [ctx(&[("a", "1"), ("a", "2")]), ctx(&[("", "x")])] {
        assert_eq!(wire(seal(&CMK, "k", 1, b"x", &c)), bad);
        let (r, blob) = sealed();
        assert_eq!(wire(open(&CMK, &r, &blob, &c)), bad);
    }
}

#[test]
fn canonical_context_is_length_prefixed_and_sorted() {
    let c = canonical_context(&ctx(&[("b", ""), ("a", "xy")])).expect("ok");
    assert_eq!(
        c,
        [
            &[0, 0, 0, 1][..],
            b"a",
            &[0, 0, 0, 2],
            b"xy",
            &[0, 0, 0, 1],
            b"b",
            &[0, 0, 0, 0]
        ]
        .concat()
    );
    // "ab"+"c" and "a"+"bc" must not collide.
    assert_ne!(
        canonical_context(&ctx(&[("ab", "c")])).expect("ok"),
        canonical_context(&ctx(&[("a", "bc")])).expect("ok")
    );
}

#[test]
fn blob_from_another_key_or_version_is_rejected() {
    let (_, blob) = sealed();
    let good = ctx(&[("a", "1"), ("b", "2")]);
    for r in [
        key_ref("key-2", 2, KeyToken(vec![])),
        key_ref("key-1", 1, KeyToken(vec![])),
    ] {
        assert_eq!(
            wire(open(&CMK, &r, &blob, &good)),
            WireError::InvalidCiphertext
        );
    }
    // Right name, wrong key material.
    let (r, _) = sealed();
    assert_eq!(
        wire(open(&[1; 32], &r, &blob, &good)),
        WireError::InvalidCiphertext
    );
}
