//! The systemd units in `scripts/systemd/`: `systemd-analyze verify` accepts
//! both, and `systemd-analyze security --offline` rates the daemon's
//! exposure at 1.5 or lower (the frontend's is printed; it must stay under
//! 2.5). The units are checked as shipped, with only the binary paths
//! pointed at this build. Skips with a message where systemd-analyze is
//! missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use hsm_kms_tests::bins::bin_path;

fn have_systemd_analyze() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Copies of the shipped units with ExecStart pointing at this build.
fn units(dir: &Path) -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = bin_path("hsm-daemon").parent().unwrap().to_owned();
    ["hsm-daemon.service", "kms-frontend.service"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(repo.join("scripts/systemd").join(name)).unwrap();
            let text = text.replace("/usr/local/bin/", &format!("{}/", bin_dir.display()));
            let out = dir.join(name);
            std::fs::write(&out, text).unwrap();
            out
        })
        .collect()
}

fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure line: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score = line
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    score.parse().unwrap()
}

#[test]
fn systemd_units_verify_and_daemon_exposure_is_at_most_1_5() {
    if !have_systemd_analyze() {
        eprintln!("SKIP systemd_units_verify: systemd-analyze is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let units = units(tmp.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = exposure(&units[0]);
    let frontend = exposure(&units[1]);
    eprintln!("systemd-analyze security: hsm-daemon {daemon}, kms-frontend {frontend}");
    assert!(daemon <= 1.5, "hsm-daemon exposure {daemon} > 1.5");
    assert!(frontend < 2.5, "kms-frontend exposure {frontend} >= 2.5");
}
