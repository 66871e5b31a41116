//! The official FHIR R4 example package (`hl7.fhir.r4.examples` 4.0.1) for tests that check the
//! FHIR code against HL7's own examples.
//!
//! It lives in `<repo>/target/fhir-packages/` (found from `CARGO_MANIFEST_DIR`, whatever
//! `CARGO_TARGET_DIR` says, so every checkout fetches it once). When it is missing it is fetched
//! with `scripts/fetch-fhir-packages` (npm pack + tar), which CI also runs before the tests. When
//! that fails the test fails and says why: a silent skip would let the examples stop being
//! checked without anyone noticing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The unpacked package folder (`.../hl7.fhir.r4.examples/package`), fetched if missing. The
/// tests that read it run side by side in one process: the first one fetches, the others wait
/// for it and take its answer.
pub fn examples_dir() -> PathBuf {
    // A fetch that fails panics and leaves the lock empty: the next test tries again.
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(fetch).clone()
}

fn fetch() -> PathBuf {
    let packages = repo_root().join("target").join("fhir-packages");
    let dir = packages.join("hl7.fhir.r4.examples").join("package");
    if dir.join("package.json").is_file() {
        return dir;
    }
    let script = repo_root().join("scripts").join("fetch-fhir-packages");
    let output = Command::new("bash").arg(&script).arg(&packages).output();
    match output {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "fetching hl7.fhir.r4.examples@4.0.1 failed ({}): {}\n{}\nRun {} by hand (it needs npm and \
             the npm registry).",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            script.display()
        ),
        Err(e) => panic!("cannot run {}: {e} (bash and npm are needed)", script.display()),
    }
    assert!(
        dir.join("package.json").is_file(),
        "{} ran but {} has no package.json",
        script.display(),
        dir.display()
    );
    dir
}
