//! The deployment recipe, checked: `deploy/sauna.service` passes `systemd-analyze verify`
//! (with no warning) once its paths point at this build, and the exit codes it relies on hold
//! (`Restart=on-failure` restarts a failure, 1; `RestartPreventExitStatus=2` keeps a usage
//! error from looping; a SIGTERM stop is a clean 0, shown by every `sauna run` test).

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is needed to check deploy/sauna.service (Debian: apt-get install systemd)");
    };
    assert!(version.status.success());
    let unit = std::fs::read_to_string(root().join("deploy/sauna.service")).expect("deploy/sauna.service");
    let dir = tempfile::tempdir().expect("tempdir");
    let here = unit
        .replace("/usr/local/bin/sauna", env!("CARGO_BIN_EXE_sauna"))
        .replace("/etc/sauna", &dir.path().display().to_string());
    let path = dir.path().join("sauna.service");
    std::fs::write(&path, here).expect("write the unit");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("systemd-analyze verify: exit {:?} {said}", out.status.code());
    assert!(out.status.success(), "{said}");
    let warnings: Vec<&str> = said.lines().filter(|l| l.contains("sauna.service")).collect();
    assert!(warnings.is_empty(), "the unit has warnings: {warnings:?}");
}

#[test]
fn exit_codes_are_what_the_unit_expects() {
    let sauna = env!("CARGO_BIN_EXE_sauna");
    let usage = Command::new(sauna).args(["run", "--no-such-flag"]).output().expect("runs");
    assert_eq!(usage.status.code(), Some(2), "a usage error is 2");
    let empty = tempfile::tempdir().expect("tempdir");
    let invalid = Command::new(sauna).args(["run", "--config-dir"]).arg(empty.path()).output().expect("runs");
    assert_eq!(invalid.status.code(), Some(1), "a directory that cannot run is 1");
    let validate = Command::new(sauna).args(["validate", "--config-dir"]).arg(empty.path()).output().expect("runs");
    assert_eq!(validate.status.code(), Some(1), "ExecStartPre fails on it");
}
