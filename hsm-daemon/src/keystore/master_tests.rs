//! Master-key rotation in the keystore: old tokens keep working until the
//! rotation completes, rewrap moves them to the new generation, unknown
//! generations are refused, and the key file follows every step.

use super::tests::{create, decrypt, encrypt, keystore};
use super::*;
use crate::keyfile;
use protocol::token::TokenHeader;
use protocol::{InvalidReason, WireError};

fn begin(ks: &mut Keystore) -> (u32, Option<u32>) {
    match ks.execute(Command::BeginMasterKeyRotation) {
        Ok(Reply::MasterKeys { current, previous }) => (current, previous),
        other => panic!("begin: {other:?}"),
    }
}

fn rewrap(ks: &mut Keystore, key: &KeyRef) -> Result<KeyRef, DaemonError> {
    match ks.execute(Command::RewrapToken { key: key.clone() })? {
        Reply::Rewrapped(token) => Ok(KeyRef {
            token,
            ..key.clone()
        }),
        other => panic!("rewrap: {other:?}"),
    }
}

fn complete(ks: &mut Keystore, generation: u32) -> Result<Reply, DaemonError> {
    ks.execute(Command::CompleteMasterKeyRotation { generation })
}

fn generation(key: &KeyRef) -> u32 {
    TokenHeader::parse(&key.token.0).expect("header").generation
}

fn audit_key(ks: &mut Keystore) -> [u8; 32] {
    match ks.execute(Command::AuditPublicKey) {
        Ok(Reply::AuditPublicKey(k)) => k,
        other => panic!("audit key: {other:?}"),
    }
}

#[test]
fn rewrap_moves_old_generation_tokens_and_refuses_unknown_generations() {
    let mut ks = keystore(8);
    let old = create(&mut ks, "k1", 1);
    assert_eq!(generation(&old), 1);
    let blob = encrypt(&mut ks, &old, b"before").expect("encrypt");
    let audit_before = audit_key(&mut ks);

    assert_eq!(begin(&mut ks), (2, Some(1)));
    assert_eq!(begin(&mut ks), (2, Some(1)), "begin again changes nothing");
    // The old token still works during the rotation; new tokens are gen 2.
    assert_eq!(decrypt(&mut ks, &old, &blob).expect("old token"), b"before");
    let fresh = create(&mut ks, "k2", 1);
    assert_eq!(generation(&fresh), 2);

    let moved = rewrap(&mut ks, &old).expect("rewrap");
    assert_eq!(generation(&moved), 2);
    assert_ne!(moved.token, old.token);
    assert_eq!(
        decrypt(&mut ks, &moved, &blob).expect("rewrapped"),
        b"before"
    );
    let again = rewrap(&mut ks, &moved).expect("current token");
    assert_eq!(
        again.token, moved.token,
        "a current token comes back unchanged"
    );

    // A token naming a generation the keystore does not hold.
    let mut unknown = moved.clone();
    unknown.token.0[3..7].copy_from_slice(&9u32.to_be_bytes());
    let err = rewrap(&mut ks, &unknown).expect_err("generation 9");
    assert_eq!(err.to_wire(), WireError::InvalidToken);
    // A rewrap still checks the id the token is presented under.
    let swapped = KeyRef {
        key_id: "k2".into(),
        ..old.clone()
    };
    assert_eq!(
        rewrap(&mut ks, &swapped).expect_err("other key").to_wire(),
        WireError::InvalidToken
    );

    // Warm the cache through the old token again just before completing.
    assert_eq!(decrypt(&mut ks, &old, &blob).expect("old token"), b"before");
    assert_eq!(ks.cached_versions("k1"), vec![1]);
    assert_eq!(
        complete(&mut ks, 3).expect_err("not the current").to_wire(),
        WireError::InvalidRequest(InvalidReason::MasterKeyGeneration)
    );
    complete(&mut ks, 2).expect("complete");
    complete(&mut ks, 2).expect("completing again is a no-op");
    // The old token is refused now, although its key was cached.
    assert_eq!(
        decrypt(&mut ks, &old, &blob)
            .expect_err("old token")
            .to_wire(),
        WireError::InvalidToken
    );
    assert_eq!(
        rewrap(&mut ks, &old)
            .expect_err("generation 1 gone")
            .to_wire(),
        WireError::InvalidToken
    );
    assert_eq!(
        decrypt(&mut ks, &moved, &blob).expect("new token"),
        b"before"
    );
    assert_eq!(audit_key(&mut ks), audit_before, "audit key survives");
    // The next rotation goes on from generation 2.
    assert_eq!(begin(&mut ks), (3, Some(2)));
}

#[test]
fn rotation_writes_both_keys_then_only_the_new_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("state");
    keyfile::init(&dir, &keyfile::Protection::DevPlain).expect("init");
    let mut slab = KeySlab::new(&[crate::secure_mem::SizeClass {
        bytes: KEY_LEN,
        slots: 8,
    }])
    .expect("slab");
    let (_, keys) = keyfile::load(&dir, None, true, &mut slab).expect("load");
    let old_master = *slab.key(keys.current.slot).expect("slot");
    let mut ks = Keystore::new(slab, keys);
    let token = create(&mut ks, "k", 1);
    let audit_before = audit_key(&mut ks);

    let reload = || {
        let mut s = KeySlab::new(&[crate::secure_mem::SizeClass {
            bytes: KEY_LEN,
            slots: 8,
        }])
        .expect("slab");
        let (_, k) = keyfile::load(&dir, None, true, &mut s).expect("reload");
        let current = (k.current.number, *s.key(k.current.slot).expect("slot"));
        let previous = k
            .previous
            .map(|p| (p.number, *s.key(p.slot).expect("slot")));
        (current, previous)
    };

    begin(&mut ks);
    let (current, previous) = reload();
    assert_eq!(current.0, 2);
    assert_ne!(current.1, old_master);
    assert_eq!(previous, Some((1, old_master)), "old key kept on disk");
    let moved = rewrap(&mut ks, &token).expect("rewrap");

    complete(&mut ks, 2).expect("complete");
    let (after, previous) = reload();
    assert_eq!(after, current);
    assert!(previous.is_none(), "only the new key is left");
    let file = std::fs::read(keyfile::path_in(&dir)).expect("read");
    assert!(!file.windows(KEY_LEN).any(|w| w == old_master));
    assert!(!dir.join("master.key.tmp").exists());

    // A daemon restarted on that file serves the rewrapped token and signs
    // audit digests with the same key.
    let mut slab = KeySlab::new(&[crate::secure_mem::SizeClass {
        bytes: KEY_LEN,
        slots: 8,
    }])
    .expect("slab");
    let (_, keys) = keyfile::load(&dir, None, true, &mut slab).expect("load");
    let mut restarted = Keystore::new(slab, keys);
    let blob = encrypt(&mut restarted, &moved, b"x").expect("new token");
    assert_eq!(decrypt(&mut restarted, &moved, &blob).expect("dec"), b"x");
    assert!(
        encrypt(&mut restarted, &token, b"x").is_err(),
        "old token refused"
    );
    assert_eq!(audit_key(&mut restarted), audit_before);
}
