//! Mappings: from what arrives (HL7 v2 today) to changes of the member store.
//!
//! `adt_patient` is the hand-written ADT demographics mapping; the mapping-files work replaces it
//! with declarative files and keeps its behaviour as golden tests.

pub mod adt_patient;
