//! The public corpus (../shared/corpus/hl7v2) and the project's fixtures as MLLP frames, for the
//! tests that send every message of them to the engine.

use std::path::{Path, PathBuf};

use tributary::hl7::split_batch;

/// Every file of the public corpus (XML files left out), sorted; None when the corpus is absent
/// (a clone of the project alone): the caller says "skipped: corpus absent".
pub fn corpus_files() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/hl7v2");
    root.is_dir()
        .then(|| files_under(&root, |path| path.extension().is_none_or(|e| e != "xml")))
}

/// Every `.hl7` file of the project's fixtures, sorted.
pub fn fixture_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    files_under(&root, |path| path.extension().is_some_and(|e| e == "hl7"))
}

fn files_under(root: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files = vec![];
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if keep(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The frames to send for one file: each message of a readable file, or the whole file as it is.
/// MLLP cannot carry its own frame bytes, so 0x0B and 0x1C are taken out of fuzz inputs.
pub fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let clean: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| *b != 0x0B && *b != 0x1C)
        .collect();
    let text: String = clean.iter().map(|&b| b as char).collect();
    match split_batch(&text) {
        Ok(messages) if !messages.is_empty() => messages
            .into_iter()
            .map(|m| m.chars().map(|c| c as u8).collect())
            .collect(),
        _ => vec![clean],
    }
}
