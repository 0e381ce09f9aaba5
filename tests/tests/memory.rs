//! Invariants I1-I3 seen from outside: after a workload, the frontend's memory
//! holds neither the master key nor any CMK; the daemon's key memory is
//! locked, and the daemon is not dumpable. Reads `/proc/PID/mem` (we run as
//! root). Each scan has a positive control so "not found" means something.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use hsm_kms_tests::memscan::{self, ScanReport};
use hsm_kms_tests::{EnvOptions, TestEnv};

/// Keys created and used for encryption, data keys and re-encryption.
async fn workload(c: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..3 {
        let out = c.create_key().send().await.unwrap();
        ids.push(out.key_metadata().unwrap().key_id().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        for j in 0..10 {
            let pt = format!("message {i}/{j}").into_bytes();
            let blob = c
                .encrypt()
                .key_id(id)
                .plaintext(Blob::new(pt.clone()))
                .encryption_context("n", j.to_string())
                .send()
                .await
                .unwrap()
                .ciphertext_blob()
                .unwrap()
                .clone();
            let out = c
                .decrypt()
                .ciphertext_blob(blob.clone())
                .encryption_context("n", j.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(out.plaintext().unwrap().as_ref(), pt.as_slice());
            let other = &ids[(i + 1) % ids.len()];
            c.re_encrypt()
                .ciphertext_blob(blob)
                .source_encryption_context("n", j.to_string())
                .destination_key_id(other)
                .send()
                .await
                .unwrap();
        }
        for _ in 0..5 {
            c.generate_data_key()
                .key_id(id)
                .key_spec(DataKeySpec::Aes256)
                .send()
                .await
                .unwrap();
            c.generate_data_key_without_plaintext()
                .key_id(id)
                .key_spec(DataKeySpec::Aes256)
                .send()
                .await
                .unwrap();
        }
    }
    ids
}

/// The CMK material of every key version, recovered from the tokens in the
/// frontend's database with the master key (what only the daemon may do).
fn recover_cmks(env: &TestEnv, ids: &[String]) -> Vec<(String, Vec<u8>)> {
    let master = env.read_master_key();
    let rows = memscan::read_tokens(&env.db_path());
    let mut cmks = Vec::new();
    for (key_id, version, token) in rows {
        let p = memscan::unwrap_token(&master, &token);
        assert_eq!(p.key_id, key_id, "token names its key");
        assert_eq!(p.version, version, "token names its version");
        assert_eq!(p.spec, 1, "SYMMETRIC_DEFAULT");
        assert_eq!(p.material.len(), 32, "AES-256 material");
        assert!(
            !token.windows(32).any(|w| w == p.material.as_slice()),
            "token holds the key in the clear"
        );
        cmks.push((key_id, p.material));
    }
    for id in ids {
        assert!(cmks.iter().any(|(k, _)| k == id), "no token for key {id}");
    }
    cmks
}

fn describe(r: &ScanReport) -> String {
    format!(
        "{} mappings, {} bytes read, {} bytes unreadable",
        r.mappings_read, r.bytes_read, r.failed_bytes
    )
}

/// All files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn no_master_key_or_cmk_in_frontend_memory() {
    if !hsm_kms_tests::running_as_root("no_master_key_or_cmk_in_frontend_memory") {
        return;
    }
    let env = TestEnv::start();
    let ids = workload(&env.client("alice")).await;
    let master = env.read_master_key();
    let cmks = recover_cmks(&env, &ids);
    let secret = env.principal("alice").secret_access_key.clone();

    // needle 0: master key, 1: alice's secret (positive control), 2..: CMKs
    let mut needles: Vec<&[u8]> = vec![&master, secret.as_bytes()];
    needles.extend(cmks.iter().map(|(_, m)| m.as_slice()));
    let report = memscan::scan(env.frontend_pid(), &needles);
    assert!(
        report.bytes_read > 1 << 20,
        "scan read too little: {}",
        describe(&report)
    );
    assert!(
        !report.hits_for(1).is_empty(),
        "positive control failed: alice's secret access key, which the frontend must hold to \
         check signatures, was not found in its memory ({})",
        describe(&report)
    );
    assert!(
        report.hits_for(0).is_empty(),
        "master key found in kms-frontend memory: {:?}",
        report.hits_for(0)
    );
    for (i, (id, _)) in cmks.iter().enumerate() {
        assert!(
            report.hits_for(i + 2).is_empty(),
            "CMK of key {id} found in kms-frontend memory: {:?}",
            report.hits_for(i + 2)
        );
    }

    // Positive control on the other side: the daemon does hold the master key,
    // so the same scanner finds it there.
    let daemon = memscan::scan(env.daemon_pid(), &[&master]);
    assert!(
        !daemon.hits_for(0).is_empty(),
        "positive control failed: master key not found in hsm-daemon memory ({})",
        describe(&daemon)
    );
}

#[tokio::test]
async fn no_master_key_or_cmk_on_frontend_disk_or_in_logs() {
    let env = TestEnv::start();
    let ids = workload(&env.client("alice")).await;
    let master = env.read_master_key();
    let cmks = recover_cmks(&env, &ids);
    let mut secrets: Vec<(String, Vec<u8>)> = vec![("master key".into(), master.to_vec())];
    secrets.extend(cmks.into_iter().map(|(id, m)| (format!("CMK {id}"), m)));
    let mut files = files_under(env.frontend_state_dir());
    files.push(env.frontend_log().to_path_buf());
    files.push(env.daemon_log().to_path_buf());
    files.push(env.config_path().to_path_buf());
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for (what, s) in &secrets {
            let hex_lower = hex::encode(s);
            let hex_upper = hex_lower.to_uppercase();
            for needle in [s.as_slice(), hex_lower.as_bytes(), hex_upper.as_bytes()] {
                assert!(
                    memchr::memmem::find(&bytes, needle).is_none(),
                    "{what} found in {}",
                    f.display()
                );
            }
        }
    }
}

fn status_field_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing from /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn daemon_key_memory_is_locked() {
    let env = TestEnv::start();
    let lck = status_field_kb(env.daemon_pid(), "VmLck:");
    assert!(lck > 0, "hsm-daemon has no locked memory (VmLck: {lck} kB)");
}

/// (start, end, VmFlags) of each mapping in `/proc/PID/smaps`.
fn smaps_flags(pid: u32) -> Vec<(u64, u64, Vec<String>)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut maps: Vec<(u64, u64, Vec<String>)> = Vec::new();
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(last) = maps.last_mut() {
                last.2 = flags.split_whitespace().map(str::to_owned).collect();
            }
        } else if let Some((range, _)) = line.split_once(' ')
            && let Some((s, e)) = range.split_once('-')
            && let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16))
        {
            maps.push((s, e, Vec::new()));
        }
    }
    maps
}

/// Copies of needle `i` in `report` that lie outside locked (`lo`),
/// undumpable (`dd`) mappings, and how many lie inside.
fn exposed_copies(pid: u32, report: &ScanReport, i: usize) -> (Vec<String>, usize) {
    let maps = smaps_flags(pid);
    let mut exposed = Vec::new();
    let mut protected = 0;
    for h in report.hits_for(i) {
        let (_, _, flags) = maps
            .iter()
            .find(|(s, e, _)| (*s..*e).contains(&h.addr))
            .unwrap_or_else(|| panic!("no smaps entry for {:x}", h.addr));
        if flags.iter().any(|f| f == "lo") && flags.iter().any(|f| f == "dd") {
            protected += 1;
        } else {
            exposed.push(format!(
                "{:x} in {} (VmFlags {})",
                h.addr,
                h.mapping,
                flags.join(" ")
            ));
        }
    }
    (exposed, protected)
}

/// I3: after a workload, every copy of the master key in the daemon is in
/// locked memory excluded from core dumps (no stray copies on stacks or heap).
#[tokio::test]
async fn daemon_master_key_copies_are_locked_and_undumpable() {
    if !hsm_kms_tests::running_as_root("daemon_master_key_copies_are_locked_and_undumpable") {
        return;
    }
    let env = TestEnv::start();
    workload(&env.client("alice")).await;
    let master = env.read_master_key();
    let pid = env.daemon_pid();
    let report = memscan::scan(pid, &[&master]);
    let (exposed, protected) = exposed_copies(pid, &report, 0);
    assert!(
        protected > 0,
        "no copy of the master key in locked, undumpable memory ({})",
        describe(&report)
    );
    assert!(
        exposed.is_empty(),
        "{} copies of the master key in hsm-daemon are outside locked, undumpable memory:\n{}",
        exposed.len(),
        exposed.join("\n")
    );
}

/// I2/I3 for CMKs: any copy of a CMK the daemon keeps after a workload is in
/// locked memory excluded from core dumps.
#[tokio::test]
async fn daemon_cmk_copies_are_locked_and_undumpable() {
    if !hsm_kms_tests::running_as_root("daemon_cmk_copies_are_locked_and_undumpable") {
        return;
    }
    let env = TestEnv::start();
    let ids = workload(&env.client("alice")).await;
    let cmks = recover_cmks(&env, &ids);
    let pid = env.daemon_pid();
    let needles: Vec<&[u8]> = cmks.iter().map(|(_, m)| m.as_slice()).collect();
    let report = memscan::scan(pid, &needles);
    let mut problems = Vec::new();
    for (i, (id, _)) in cmks.iter().enumerate() {
        let (exposed, _) = exposed_copies(pid, &report, i);
        problems.extend(exposed.into_iter().map(|e| format!("CMK {id}: {e}")));
    }
    assert!(
        problems.is_empty(),
        "{} CMK copies in hsm-daemon outside locked, undumpable memory:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn daemon_is_not_dumpable() {
    if !hsm_kms_tests::running_as_root("daemon_is_not_dumpable") {
        return;
    }
    // Run the daemon as `nobody`: a dumpable process's /proc/PID files belong
    // to its own uid, a non-dumpable one's to root. (With the daemon running as
    // root both would be root, which proves nothing.)
    let nobody = (65534, 65534);
    let env = TestEnv::start_with(EnvOptions {
        daemon_user: Some(nobody),
        ..EnvOptions::default()
    });
    // The frontend reaches the daemon (allowed by --allow-uid).
    env.client("alice").create_key().send().await.unwrap();
    let pid = env.daemon_pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("65534"),
        "the daemon runs as nobody: {uid_line}"
    );
    // Control: a dumpable process of the same uid owns its /proc files.
    let mut control = std::process::Command::new("sleep");
    std::os::unix::process::CommandExt::uid(&mut control, nobody.0);
    std::os::unix::process::CommandExt::gid(&mut control, nobody.1);
    let mut control = control.arg("30").spawn().unwrap();
    let control_owner = std::fs::metadata(format!("/proc/{}/status", control.id()))
        .unwrap()
        .uid();
    control.kill().unwrap();
    control.wait().unwrap();
    assert_eq!(
        control_owner, nobody.0,
        "control: a dumpable process owns its /proc files"
    );

    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid();
    assert_eq!(
        owner, 0,
        "/proc/{pid}/status of hsm-daemon (uid {}) is owned by uid {owner}: the daemon is dumpable",
        nobody.0
    );
    let lck = status_field_kb(pid, "VmLck:");
    assert!(
        lck > 0,
        "hsm-daemon as nobody has no locked memory (VmLck: {lck} kB)"
    );
}

#[tokio::test]
async fn daemon_core_dumps_are_off() {
    let env = TestEnv::start();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", env.daemon_pid())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(
        &fields[4..6],
        ["0", "0"],
        "RLIMIT_CORE soft and hard: {core}"
    );
}
