//! Every mapping of a folder (`*.map`), by name: what the engine holds and swaps on a reload.
//! One broken file fails the whole load, so a folder is never half in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compile::TableCache;
use crate::{LoadError, Mapping};

/// The mappings of one folder.
#[derive(Debug, Default)]
pub struct MappingSet {
    dir: PathBuf,
    mappings: BTreeMap<String, Arc<Mapping>>,
}

impl MappingSet {
    /// Loads every `*.map` file directly in `dir` (tables shared between them are read once).
    pub fn load(dir: &Path) -> Result<MappingSet, LoadError> {
        let unreadable = |e: std::io::Error| LoadError {
            file: dir.to_path_buf(),
            line: 0,
            message: format!("cannot read the mappings folder: {e}"),
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            if path.extension().is_some_and(|e| e == "map") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut cache = TableCache::default();
        let mut mappings = BTreeMap::new();
        for file in files {
            let mapping = Mapping::load_with(&file, dir, &mut cache)?;
            mappings.insert(mapping.name.clone(), Arc::new(mapping));
        }
        Ok(MappingSet {
            dir: dir.to_path_buf(),
            mappings,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Mapping>> {
        self.mappings.get(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.mappings.keys().cloned().collect()
    }

    /// The folder the mappings came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }
}
