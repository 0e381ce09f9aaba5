//! Backup and quorum restore, from outside: `hsm-daemon backup` writes a
//! wrapped master key and N shares (0600, never overwritten, no master key
//! bytes in any of them); `hsm-daemon restore` with any M shares gives a new
//! state directory whose daemon decrypts, through the frontend and the AWS
//! SDK, what the original daemon encrypted; fewer than M shares, a share of
//! another backup, a corrupted or altered share or backup file, and a target
//! that already holds a master key are each refused with a message naming
//! the problem, and nothing is written. After a master-key rotation the
//! backup (format 2) carries the generation and the audit seed too, and the
//! restored daemon serves data from both generations under the original
//! audit key; during a rotation, backup is refused.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hsm_kms_tests::bins::bin_path;
use hsm_kms_tests::{EnvOptions, TestEnv, ops};
use serde_json::json;
use sha2::{Digest, Sha256};

const FAST_KDF: [&str; 4] = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];

fn daemon() -> Command {
    let mut c = Command::new(bin_path("hsm-daemon"));
    c.env_remove("CREDENTIALS_DIRECTORY");
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `hsm-daemon backup` of `env`'s master key (unsealed with its operator
/// secret) into `out`, N shares, threshold M.
fn backup(env: &TestEnv, out: &Path, n: u32, m: u32) -> Output {
    daemon()
        .arg("backup")
        .arg("--state-dir")
        .arg(env.hsm_state_dir())
        .arg("--secret-file")
        .arg(env.secret_file())
        .args(["--shares", &n.to_string(), "--threshold", &m.to_string()])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn backup_ok(env: &TestEnv, out: &Path, n: u32, m: u32) {
    let o = backup(env, out, n, m);
    assert!(o.status.success(), "backup failed: {}", stderr(&o));
}

fn share(out: &Path, k: u32, n: u32) -> PathBuf {
    out.join(format!("share-{k}-of-{n}.hks"))
}

/// `hsm-daemon restore` into `state` sealed under `secret` (or plain when
/// `secret` is `None`).
fn restore(backup_dir: &Path, shares: &[PathBuf], state: &Path, secret: Option<&Path>) -> Output {
    let mut c = daemon();
    c.arg("restore")
        .arg("--state-dir")
        .arg(state)
        .arg("--backup")
        .arg(backup_dir.join("backup.hkb"))
        .arg("--share")
        .args(shares);
    match secret {
        Some(s) => c.arg("--secret-file").arg(s).args(FAST_KDF),
        None => c.arg("--dev-plain-key"),
    };
    c.output().unwrap()
}

fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The master key in a plain (`--dev-plain-key`) master key file.
fn plain_master(path: &Path) -> [u8; 32] {
    let bytes = fs::read(path).unwrap();
    assert_eq!(bytes.len(), 40, "plain master.key length");
    assert_eq!(&bytes[..8], b"HKMSMK01", "plain master.key magic");
    bytes[8..].try_into().unwrap()
}

#[tokio::test]
async fn restored_daemon_decrypts_what_the_original_encrypted() {
    let mut env = TestEnv::start();
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let blob = ops::encrypt(&c, &key, b"made on daemon A", &[("app", "backup")]).await;
    let original = env.read_master_key();

    let out = env.dir().join("backup");
    backup_ok(&env, &out, 5, 3);

    // "Another machine": daemon A and its state directory are gone, the
    // frontend's database stays; the new state directory is sealed under a
    // different operator secret.
    env.kill9_frontend();
    env.kill9_daemon();
    fs::rename(env.hsm_state_dir(), env.dir().join("hsm-of-daemon-a")).unwrap();
    write_private(env.secret_file(), b"the new machine's operator secret");
    let shares = [share(&out, 1, 5), share(&out, 3, 5), share(&out, 5, 5)];
    let o = restore(&out, &shares, env.hsm_state_dir(), Some(env.secret_file()));
    assert!(o.status.success(), "restore failed: {}", stderr(&o));
    assert_eq!(env.read_master_key(), original, "restored key differs");
    assert_eq!(mode(env.hsm_state_dir()), 0o700);
    assert_eq!(mode(&env.master_key_path()), 0o600);

    env.start_daemon().await;
    env.start_frontend().await;
    let c = env.client("alice");
    assert_eq!(
        ops::decrypt(&c, &blob, &[("app", "backup")]).await,
        b"made on daemon A"
    );
    // And the restored daemon works for new data too.
    let again = ops::encrypt(&c, &key, b"made on daemon B", &[]).await;
    assert_eq!(ops::decrypt(&c, &again, &[]).await, b"made on daemon B");
}

#[test]
fn any_three_of_five_shares_restore_the_same_master_key() {
    let env = TestEnv::start();
    let original = env.read_master_key();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 5, 3);
    for (i, pick) in [[1, 2, 3], [2, 4, 5], [5, 1, 4], [3, 4, 5]]
        .iter()
        .enumerate()
    {
        let state = env.dir().join(format!("restored-{i}"));
        let shares: Vec<PathBuf> = pick.iter().map(|&k| share(&out, k, 5)).collect();
        let o = restore(&out, &shares, &state, None);
        assert!(o.status.success(), "{pick:?}: {}", stderr(&o));
        assert_eq!(
            plain_master(&state.join("master.key")),
            original,
            "{pick:?}"
        );
    }
}

#[test]
fn two_shares_are_refused_naming_the_threshold() {
    let env = TestEnv::start();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 5, 3);
    let state = env.dir().join("restored");
    let two = [share(&out, 2, 5), share(&out, 4, 5)];
    let o = restore(&out, &two, &state, Some(env.secret_file()));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("needs 3 distinct shares of 5, 2 given"),
        "{err}"
    );
    // The same share twice is still two distinct shares.
    let repeated = [share(&out, 2, 5), share(&out, 4, 5), share(&out, 2, 5)];
    let o = restore(&out, &repeated, &state, Some(env.secret_file()));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("needs 3 distinct shares"),
        "{}",
        stderr(&o)
    );
    assert!(!state.join("master.key").exists(), "a key was written");
}

#[test]
fn share_of_another_backup_is_refused() {
    let env = TestEnv::start();
    let a = env.dir().join("backup-a");
    let b = env.dir().join("backup-b");
    backup_ok(&env, &a, 5, 3);
    backup_ok(&env, &b, 5, 3);
    let state = env.dir().join("restored");
    let mixed = [share(&a, 1, 5), share(&a, 2, 5), share(&b, 3, 5)];
    let o = restore(&a, &mixed, &state, Some(env.secret_file()));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&share(&b, 3, 5).display().to_string())
            && err.contains("belongs to backup")
            && err.contains("not to backup"),
        "{err}"
    );
    assert!(!state.join("master.key").exists());
}

#[test]
fn flipped_byte_in_backup_file_is_refused() {
    let env = TestEnv::start();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 5, 3);
    let file = out.join("backup.hkb");
    let good = fs::read(&file).unwrap();
    let shares = [share(&out, 1, 5), share(&out, 2, 5), share(&out, 3, 5)];
    let state = env.dir().join("restored");
    // Every region: magic, id, m, n, share checks, nonce, ciphertext, tag, trailer.
    let len = good.len();
    for at in [
        0,
        8,
        24,
        25,
        26,
        len - 92,
        len - 80,
        len - 60,
        len - 20,
        len - 1,
    ] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        write_private(&file, &bad);
        let o = restore(&out, &shares, &state, Some(env.secret_file()));
        assert!(!o.status.success(), "byte {at} flipped, restore succeeded");
        let err = stderr(&o);
        assert!(
            err.contains("corrupted") || err.contains("bad magic") || err.contains("wrong size"),
            "byte {at}: {err}"
        );
        assert!(!state.join("master.key").exists(), "byte {at}: key written");
    }
    write_private(&file, &good);
    let o = restore(&out, &shares, &state, Some(env.secret_file()));
    assert!(
        o.status.success(),
        "the intact file restores: {}",
        stderr(&o)
    );
}

/// A deliberate change that also fixes the trailing SHA-256: only the GCM
/// tag (whose AAD binds id, M, N and the share checks) can catch it.
#[test]
fn forged_backup_with_recomputed_checksum_fails_the_gcm_check() {
    let env = TestEnv::start();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 5, 3);
    let file = out.join("backup.hkb");
    let good = fs::read(&file).unwrap();
    let shares = [share(&out, 1, 5), share(&out, 2, 5), share(&out, 3, 5)];
    let state = env.dir().join("restored");
    let len = good.len();
    // The ciphertext, the tag, and the fourth share's recorded check (share
    // 4 is not given, so only the AAD covers it).
    for at in [len - 70, len - 40, 26 + 3 * 32 + 5] {
        let mut forged = good.clone();
        forged[at] ^= 0x80;
        let digest = Sha256::digest(&forged[..len - 32]);
        forged[len - 32..].copy_from_slice(&digest);
        write_private(&file, &forged);
        let o = restore(&out, &shares, &state, Some(env.secret_file()));
        assert!(!o.status.success(), "byte {at} forged, restore succeeded");
        let err = stderr(&o);
        assert!(
            err.contains("does not open with the key rebuilt from the shares"),
            "byte {at}: {err}"
        );
        assert!(!state.join("master.key").exists());
    }
}

#[test]
fn corrupted_or_altered_share_is_refused_and_named() {
    let env = TestEnv::start();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 5, 3);
    let state = env.dir().join("restored");
    let target = share(&out, 2, 5);
    let good = fs::read(&target).unwrap();
    let shares = [share(&out, 1, 5), target.clone(), share(&out, 3, 5)];

    // A flipped bit in the share value: its own check names it.
    let mut bad = good.clone();
    bad[40] ^= 0x01;
    write_private(&target, &bad);
    let o = restore(&out, &shares, &state, Some(env.secret_file()));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(&target.display().to_string()) && err.contains("corrupted"),
        "{err}"
    );

    // Altered with its check recomputed: the backup's record names it.
    let mut forged = good.clone();
    forged[40] ^= 0x01;
    let digest = Sha256::digest(&forged[..59]);
    forged[59..].copy_from_slice(&digest);
    write_private(&target, &forged);
    let o = restore(&out, &shares, &state, Some(env.secret_file()));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(&target.display().to_string()) && err.contains("altered or replaced"),
        "{err}"
    );

    // Truncated.
    write_private(&target, &good[..50]);
    let o = restore(&out, &shares, &state, Some(env.secret_file()));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("wrong size for a share file"),
        "{}",
        stderr(&o)
    );
    assert!(!state.join("master.key").exists());
}

#[test]
fn restore_never_overwrites_an_existing_master_key() {
    let env = TestEnv::start();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 3, 2);
    let other = env.dir().join("other");
    let o = daemon()
        .args(["init", "--dev-plain-key", "--state-dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let key = other.join("master.key");
    let before = fs::read(&key).unwrap();
    let shares = [share(&out, 1, 3), share(&out, 2, 3)];
    for secret in [Some(env.secret_file()), None] {
        let o = restore(&out, &shares, &other, secret);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("refusing to overwrite a master key"),
            "{}",
            stderr(&o)
        );
        assert_eq!(fs::read(&key).unwrap(), before, "master key changed");
    }
}

#[test]
fn backup_files_are_private_and_never_overwritten() {
    let env = TestEnv::start();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 4, 2);
    assert_eq!(mode(&out), 0o700);
    let mut files = vec![out.join("backup.hkb")];
    files.extend((1..=4).map(|k| share(&out, k, 4)));
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(fs::read_dir(&out).unwrap().count(), files.len());
    let before: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let o = backup(&env, &out, 4, 2);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("refusing to overwrite"),
        "{}",
        stderr(&o)
    );
    let after: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(before, after, "a backup file was overwritten");
}

#[test]
fn backup_files_do_not_contain_the_master_key() {
    let env = TestEnv::start();
    let master = env.read_master_key();
    let out = env.dir().join("backup");
    backup_ok(&env, &out, 5, 3);
    for e in fs::read_dir(&out).unwrap() {
        let path = e.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        assert!(
            !bytes.windows(master.len()).any(|w| w == master),
            "master key in the clear in {}",
            path.display()
        );
    }
    // Positive control: the same scan finds the key in a plain restore.
    let state = env.dir().join("restored");
    let shares = [share(&out, 1, 5), share(&out, 2, 5), share(&out, 3, 5)];
    let o = restore(&out, &shares, &state, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = fs::read(state.join("master.key")).unwrap();
    assert!(plain.windows(master.len()).any(|w| w == master));
}

#[test]
fn threshold_of_one_or_above_the_share_count_is_refused() {
    let env = TestEnv::start();
    for (n, m, says) in [
        (5, 1, "below 2"),
        (5, 0, "below 2"),
        (3, 4, "more than --shares 3"),
        (256, 3, "at most 255"),
    ] {
        let out = env.dir().join(format!("backup-{n}-{m}"));
        let o = backup(&env, &out, n, m);
        assert!(!o.status.success(), "{m} of {n} accepted");
        assert!(stderr(&o).contains(says), "{m} of {n}: {}", stderr(&o));
        assert!(!out.exists(), "{m} of {n}: output written");
    }
}

#[test]
fn backup_of_a_sealed_key_needs_the_right_secret() {
    let env = TestEnv::start();
    let out = env.dir().join("backup");
    let o = daemon()
        .arg("backup")
        .arg("--state-dir")
        .arg(env.hsm_state_dir())
        .args(["--shares", "3", "--threshold", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is sealed"), "{}", stderr(&o));
    let wrong = env.dir().join("wrong.secret");
    write_private(&wrong, b"not the operator secret");
    let o = daemon()
        .arg("backup")
        .arg("--state-dir")
        .arg(env.hsm_state_dir())
        .arg("--secret-file")
        .arg(&wrong)
        .args(["--shares", "3", "--threshold", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("operator secret is wrong"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "output written without the master key");
}

fn audit_public_key(env: &TestEnv) -> String {
    let path = env.frontend_state_dir().join("audit/audit-signing-key.pub");
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// After a completed master-key rotation the key file is in format 2
/// (generation 2, the carried audit seed); its backup (format 2) restores a
/// key file holding the same generation, key and audit seed, so the
/// restored daemon decrypts what was encrypted before and after the
/// rotation and signs the audit log with the original public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_after_a_rotation_restores_both_generations_work_and_the_audit_key() {
    let mut env = TestEnv::start_with(EnvOptions {
        frontend_extra_toml: Some("[audit]\ndigest_every = 3\n".into()),
        ..EnvOptions::default()
    });
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let before = ops::encrypt(&c, &key, b"before the rotation", &[("when", "before")]).await;
    let summary = env.kmsctl("admin", ["--json", "rotate-master-key"]).json();
    assert_eq!(
        (summary["Completed"].clone(), summary["Generation"].clone()),
        (json!(true), json!(2)),
        "{summary}"
    );
    let after = ops::encrypt(&c, &key, b"after the rotation", &[]).await;
    let rotated = env.read_master_keys();
    assert_eq!(rotated.keys.len(), 1);
    assert_eq!(rotated.keys[0].0, 2);
    assert!(rotated.audit_seed.is_some(), "format 2 carries the seed");
    // A graceful restart signs a digest, writing the audit public key file.
    env.restart_frontend().await;
    let audit_key_before = audit_public_key(&env);

    let out = env.dir().join("backup");
    let o = backup(&env, &out, 5, 3);
    assert!(o.status.success(), "backup failed: {}", stderr(&o));
    assert_eq!(&fs::read(out.join("backup.hkb")).unwrap()[..8], b"HKMSBK02");
    // Restored plain (development): format 2 as a rotation writes it plain,
    // magic | count 1 | audit seed | generation | key.
    let plain = env.dir().join("restored-plain");
    let shares = [share(&out, 1, 5), share(&out, 2, 5), share(&out, 4, 5)];
    let o = restore(&out, &shares, &plain, None);
    assert!(o.status.success(), "plain restore failed: {}", stderr(&o));
    let bytes = fs::read(plain.join("master.key")).unwrap();
    assert_eq!(bytes.len(), 77, "plain format 2, one generation");
    assert_eq!((&bytes[..8], bytes[8]), (&b"HKMSMK02"[..], 1));
    assert_eq!(
        Some(<[u8; 32]>::try_from(&bytes[9..41]).unwrap()),
        rotated.audit_seed
    );
    assert_eq!(u32::from_be_bytes(bytes[41..45].try_into().unwrap()), 2);
    assert_eq!(bytes[45..], rotated.keys[0].1);

    env.kill9_frontend();
    env.kill9_daemon();
    fs::rename(env.hsm_state_dir(), env.dir().join("hsm-of-daemon-a")).unwrap();
    write_private(env.secret_file(), b"the new machine's operator secret");
    let shares = [share(&out, 2, 5), share(&out, 3, 5), share(&out, 5, 5)];
    let o = restore(&out, &shares, env.hsm_state_dir(), Some(env.secret_file()));
    assert!(o.status.success(), "restore failed: {}", stderr(&o));
    assert_eq!(&fs::read(env.master_key_path()).unwrap()[..8], b"HKMSSK02");
    let restored = env.read_master_keys();
    assert_eq!(restored.keys, rotated.keys, "same generation and key");
    assert_eq!(restored.audit_seed, rotated.audit_seed, "same audit seed");
    assert_eq!(mode(&env.master_key_path()), 0o600);

    // The public key file is fetched again from the restored daemon.
    fs::remove_file(env.frontend_state_dir().join("audit/audit-signing-key.pub")).unwrap();
    env.start_daemon().await;
    env.start_frontend().await;
    let c = env.client("alice");
    assert_eq!(
        ops::decrypt(&c, &before, &[("when", "before")]).await,
        b"before the rotation"
    );
    assert_eq!(ops::decrypt(&c, &after, &[]).await, b"after the rotation");
    let fresh = ops::encrypt(&c, &key, b"on the restored daemon", &[]).await;
    assert_eq!(
        ops::decrypt(&c, &fresh, &[]).await,
        b"on the restored daemon"
    );
    env.restart_frontend().await;
    assert_eq!(audit_public_key(&env), audit_key_before);
}

/// While a rotation is in progress the key file holds two master keys; a
/// backup then is refused, naming the command that finishes the rotation,
/// and nothing is written. Once it is finished, backup works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_during_a_rotation_in_progress_is_refused_naming_the_fix() {
    let env = TestEnv::start();
    let c = env.client("alice");
    for _ in 0..3 {
        ops::create_key(&c).await;
    }
    let r = env
        .admin_call(
            "admin",
            "RotateMasterKey",
            json!({"BatchSize": 1, "MaxBatches": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["Completed"], false);
    assert_eq!(env.read_master_keys().keys.len(), 2, "rotation in progress");

    let out = env.dir().join("backup");
    let o = backup(&env, &out, 3, 2);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("rotation is in progress") && err.contains("kmsctl rotate-master-key"),
        "{err}"
    );
    assert!(!out.exists(), "output written during a rotation");

    let summary = env.kmsctl("admin", ["--json", "rotate-master-key"]).json();
    assert_eq!(summary["Completed"], true, "{summary}");
    backup_ok(&env, &out, 3, 2);
}
