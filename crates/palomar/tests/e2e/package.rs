//! The Debian package, built by `contrib/build-deb.sh` from the binary under test: what it installs where, its
//! conffile, the unit it enables, and a binary that runs.

use std::path::Path;
use std::process::Command;

use crate::common::BIN;

/// `dpkg-deb ARGS`: its standard output; the command must succeed.
fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let output = Command::new("dpkg-deb").args(args).arg(deb).output().expect("dpkg-deb runs");
    assert!(output.status.success(), "dpkg-deb {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_debian_package_installs_the_server_as_a_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let built = Command::new(format!("{root}/contrib/build-deb.sh"))
        .args(["--no-build", "--output"])
        .arg(dir.path())
        // The binary under test, in target/debug: no release build inside a test.
        .env("PALOMAR_DEB_PROFILE", "dev")
        .output()
        .expect("contrib/build-deb.sh runs");
    assert!(
        built.status.success(),
        "contrib/build-deb.sh (cargo install cargo-deb --locked, or run .ci/run): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = std::fs::read_dir(dir.path())
        .expect("lists the output")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .expect("a .deb was written");

    let info = dpkg_deb(&["--info"], &deb);
    assert!(info.contains("Package: palomar") && info.contains("Section: net"), "{info}");
    let contents = dpkg_deb(&["--contents"], &deb);
    for path in [
        "./usr/bin/palomar",
        "./usr/lib/systemd/system/palomar.service",
        "./etc/palomar/palomar.toml",
        "./usr/share/man/man1/palomar.1.gz",
        "./usr/share/man/man1/palomar-serve.1.gz",
        "./usr/share/bash-completion/completions/palomar",
        "./usr/share/zsh/vendor-completions/_palomar",
        "./usr/share/fish/vendor_completions.d/palomar.fish",
        "./usr/share/doc/palomar/grafana-dashboard.json",
    ] {
        assert!(contents.contains(path), "{path} is not in the package:\n{contents}");
    }

    let control = dir.path().join("control");
    Command::new("dpkg-deb").arg("--control").arg(&deb).arg(&control).status().expect("dpkg-deb runs");
    let conffiles = std::fs::read_to_string(control.join("conffiles")).expect("the package has conffiles");
    assert!(conffiles.lines().any(|line| line == "/etc/palomar/palomar.toml"), "kept on upgrade: {conffiles}");
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("a postinst");
    assert!(postinst.contains("deb-systemd-helper enable palomar.service"), "the unit is enabled: {postinst}");
    assert!(!postinst.contains("#DEBHELPER#"), "the token was replaced: {postinst}");

    let unpacked = dir.path().join("root");
    let extracted = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked).status().expect("dpkg-deb runs");
    assert!(extracted.success());
    let unit = std::fs::read_to_string(unpacked.join("usr/lib/systemd/system/palomar.service")).expect("the unit");
    let ours = std::fs::read_to_string(format!("{root}/contrib/palomar.service")).expect("contrib's unit");
    assert_eq!(unit, ours, "the package's unit is contrib/palomar.service");
    let config = std::fs::read_to_string(unpacked.join("etc/palomar/palomar.toml")).expect("the configuration");
    let defaults = Command::new(BIN).args(["serve", "--print-config"]).output().expect("palomar runs");
    assert_eq!(config, String::from_utf8_lossy(&defaults.stdout), "the default configuration, commented");
    let version = Command::new(unpacked.join("usr/bin/palomar")).arg("--version").output().expect("runs");
    assert!(version.status.success());
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("palomar {}", env!("CARGO_PKG_VERSION")));
}
