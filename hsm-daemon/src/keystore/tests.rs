//! Keystore tests: every operation, the token-exact cache and eviction.

use super::*;
use protocol::WireError;

/// Generation-1 master keys in `slab` (master 0x5A.., audit seed 0xA5..),
/// persisted nowhere.
pub(super) fn test_keys(slab: &mut KeySlab) -> MasterKeys {
    let master = slab.alloc(KEY_LEN).expect("slot");
    slab.key_mut(master).expect("master").fill(0x5A);
    let audit_seed = slab.alloc(KEY_LEN).expect("slot");
    slab.key_mut(audit_seed).expect("seed").fill(0xA5);
    MasterKeys {
        current: crate::keyfile::Generation {
            number: 1,
            slot: master,
        },
        previous: None,
        audit_seed,
        file: None,
    }
}

/// A keystore with `slots` 32-byte slots besides the audit seed's.
pub(super) fn keystore(slots: u32) -> Keystore {
    let mut slab = KeySlab::new(&[crate::secure_mem::SizeClass {
        bytes: KEY_LEN,
        slots: slots + 1,
    }])
    .expect("map");
    let keys = test_keys(&mut slab);
    Keystore::new(slab, keys)
}

pub(super) fn create(ks: &mut Keystore, id: &str, version: u32) -> KeyRef {
    let Ok(Reply::Token(token)) = ks.execute(Command::CreateKey {
        key_id: id.into(),
        version,
        spec: KeySpec::SymmetricDefault,
        generated: None,
    }) else {
        panic!("create failed")
    };
    KeyRef {
        key_id: id.into(),
        version,
        token,
    }
}

pub(super) fn encrypt(ks: &mut Keystore, key: &KeyRef, pt: &[u8]) -> Result<Vec<u8>, DaemonError> {
    match ks.execute(Command::Encrypt {
        key: key.clone(),
        plaintext: SecretBytes::new(pt.to_vec()),
        context: vec![("purpose".into(), "test".into())],
    })? {
        Reply::Blob(b) => Ok(b),
        other => panic!("unexpected {other:?}"),
    }
}

pub(super) fn decrypt(
    ks: &mut Keystore,
    key: &KeyRef,
    blob: &[u8],
) -> Result<Vec<u8>, DaemonError> {
    match ks.execute(Command::Decrypt {
        key: key.clone(),
        blob: blob.to_vec(),
        context: vec![("purpose".into(), "test".into())],
    })? {
        Reply::Plaintext(p) => Ok(p.expose().to_vec()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn encrypt_decrypt_round_trip_and_cache() {
    let mut ks = keystore(8);
    let k = create(&mut ks, "k1", 1);
    let blob = encrypt(&mut ks, &k, b"hello").expect("encrypt");
    assert_eq!(decrypt(&mut ks, &k, &blob).expect("decrypt"), b"hello");
    assert_eq!(ks.cache.len(), 1);
    let Ok(Reply::Status(s)) = ks.execute(Command::Status) else {
        panic!("status")
    };
    assert_eq!((s.cached_keys, s.requests), (1, 4));
}

#[test]
fn another_token_for_a_cached_key_never_hits() {
    let mut ks = keystore(8);
    let k = create(&mut ks, "k1", 1);
    encrypt(&mut ks, &k, b"x").expect("warm the cache");
    let mut forged = k.clone();
    forged.token.0[0] ^= 1;
    let err = encrypt(&mut ks, &forged, b"x").expect_err("forged token");
    assert_eq!(err.to_wire(), WireError::InvalidToken);
    // A real token of another key presented under k1's name.
    let other = create(&mut ks, "k2", 1);
    let swapped = KeyRef {
        token: other.token,
        ..k.clone()
    };
    assert_eq!(
        encrypt(&mut ks, &swapped, b"x")
            .expect_err("swapped")
            .to_wire(),
        WireError::InvalidToken
    );
    // The good entry is still there and still works.
    encrypt(&mut ks, &k, b"x").expect("still fine");
}

#[test]
fn full_cache_evicts_oldest_and_keeps_working() {
    let mut ks = keystore(3); // master + 2 cache slots
    let keys: Vec<KeyRef> = (0..5)
        .map(|i| create(&mut ks, &format!("k{i}"), 1))
        .collect();
    let blobs: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| encrypt(&mut ks, k, k.key_id.as_bytes()).expect("enc"))
        .collect();
    assert_eq!(ks.cache.len(), 2);
    for (k, b) in keys.iter().zip(&blobs) {
        assert_eq!(decrypt(&mut ks, k, b).expect("dec"), k.key_id.as_bytes());
    }
    assert_eq!(ks.cache.len(), 2);
}

#[test]
fn data_keys_and_reencrypt() {
    let mut ks = keystore(3);
    let a = create(&mut ks, "a", 1);
    let b = create(&mut ks, "b", 7);
    let Ok(Reply::DataKey {
        plaintext: Some(pt),
        blob,
    }) = ks.execute(Command::GenerateDataKey {
        key: a.clone(),
        len: 32,
        context: vec![("purpose".into(), "test".into())],
        with_plaintext: true,
    })
    else {
        panic!("gdk")
    };
    assert_eq!(pt.len(), 32);
    assert_eq!(decrypt(&mut ks, &a, &blob).expect("dec"), pt.expose());
    let Ok(Reply::Blob(re)) = ks.execute(Command::ReEncrypt {
        source: a.clone(),
        blob: blob.clone(),
        source_context: vec![("purpose".into(), "test".into())],
        destination: b.clone(),
        destination_context: vec![("purpose".into(), "test".into())],
    }) else {
        panic!("reencrypt")
    };
    assert_eq!(decrypt(&mut ks, &b, &re).expect("dec"), pt.expose());
    assert!(decrypt(&mut ks, &a, &re).is_err());
    let Ok(Reply::DataKey {
        plaintext: None, ..
    }) = ks.execute(Command::GenerateDataKey {
        key: a,
        len: 16,
        context: vec![],
        with_plaintext: false,
    })
    else {
        panic!("gdk without plaintext")
    };
    let Ok(Reply::Random(r)) = ks.execute(Command::GenerateRandom { len: 1024 }) else {
        panic!("random")
    };
    assert_eq!(r.len(), 1024);
}

#[test]
fn runs_on_a_locked_undumpable_stack_and_wipes_when_serving_ends() {
    let thread = keystore(4)
        .spawn(|check, handle| {
            let status = handle.call(Command::Status);
            handle.scrub_stack();
            // A re-entrant call is refused, not a panic.
            let held = handle.inner.borrow_mut();
            let reentrant = handle.call(Command::Status);
            drop(held);
            (check, status, reentrant)
        })
        .expect("spawn");
    let (check, status, reentrant) = thread.join().expect("thread").expect("stack");
    assert!(check.dontdump, "{check:?}");
    assert!(matches!(status, Ok(Reply::Status(_))));
    assert!(matches!(reentrant, Err(DaemonError::KeystoreBusy)));
}

fn multi_class_keystore() -> Keystore {
    use crate::secure_mem::SizeClass;
    let mut slab = KeySlab::new(&[
        SizeClass {
            bytes: KEY_LEN,
            slots: 8,
        },
        SizeClass {
            bytes: 256,
            slots: 4,
        },
        SizeClass {
            bytes: 4096,
            slots: 2,
        },
    ])
    .expect("map");
    let keys = test_keys(&mut slab);
    Keystore::new(slab, keys)
}

fn create_spec(ks: &mut Keystore, id: &str, version: u32, spec: KeySpec) -> KeyRef {
    let Ok(Reply::Token(token)) = ks.execute(Command::CreateKey {
        key_id: id.into(),
        version,
        spec,
        generated: None,
    }) else {
        panic!("create failed")
    };
    KeyRef {
        key_id: id.into(),
        version,
        token,
    }
}

#[test]
fn evict_key_wipes_every_cached_version_of_that_key_only() {
    let mut ks = multi_class_keystore();
    let v1 = create(&mut ks, "k", 1);
    let v2 = create(&mut ks, "k", 2);
    let other = create(&mut ks, "other", 1);
    for key in [&v1, &v2, &other] {
        encrypt(&mut ks, key, b"x").expect("encrypt");
    }
    assert!(matches!(
        ks.execute(Command::CachedVersions { key_id: "k".into() }),
        Ok(Reply::CachedVersions(v)) if v == vec![1, 2]
    ));
    assert!(matches!(
        ks.execute(Command::EvictKey { key_id: "k".into() }),
        Ok(Reply::Evicted(2))
    ));
    assert!(matches!(
        ks.execute(Command::CachedVersions { key_id: "k".into() }),
        Ok(Reply::CachedVersions(v)) if v.is_empty()
    ));
    assert!(matches!(
        ks.execute(Command::CachedVersions { key_id: "other".into() }),
        Ok(Reply::CachedVersions(v)) if v == vec![1]
    ));
}

#[test]
fn asymmetric_material_is_cached_in_its_size_class_and_refused_for_aes_ops() {
    let mut ks = multi_class_keystore();
    let ec = create_spec(&mut ks, "ec", 1, KeySpec::EccNistP256);
    let sig = match ks.execute(Command::Sign {
        key: ec.clone(),
        message: SecretBytes::new(b"m".to_vec()),
        message_type: MessageType::Raw,
        algorithm: SigningAlgorithm::EcdsaSha256,
    }) {
        Ok(Reply::Signature(s)) => s,
        other => panic!("unexpected {other:?}"),
    };
    assert!(matches!(
        ks.execute(Command::Verify {
            key: ec.clone(),
            message: SecretBytes::new(b"m".to_vec()),
            message_type: MessageType::Raw,
            algorithm: SigningAlgorithm::EcdsaSha256,
            signature: sig,
        }),
        Ok(Reply::Verified(true))
    ));
    // An EC token is not an AES key.
    assert!(matches!(
        encrypt(&mut ks, &ec, b"x"),
        Err(DaemonError::InvalidToken(_))
    ));
    // A data key pair's private key opens under the symmetric key.
    let aes = create(&mut ks, "aes", 1);
    let Ok(Reply::DataKeyPair {
        private_plaintext: Some(private),
        private_blob,
        ..
    }) = ks.execute(Command::GenerateDataKeyPair {
        key: aes.clone(),
        pair_spec: KeySpec::EccNistP384,
        context: vec![],
        with_plaintext: true,
        generated: None,
    })
    else {
        panic!("pair failed")
    };
    let Ok(Reply::Plaintext(opened)) = ks.execute(Command::Decrypt {
        key: aes,
        blob: private_blob,
        context: vec![],
    }) else {
        panic!("decrypt failed")
    };
    assert_eq!(opened.expose(), private.expose());
}
