//! The master patient index as the store keeps it, synced from the upstream feeds: patients
//! (create, update, merge, identifier change, and their indexes), a posted Patient merged with
//! what its feed mapping derives, finding patients, and PIX cross-referencing.

pub(crate) mod patient_merge;
pub(crate) mod patient_search;
pub(crate) mod patients;
pub(crate) mod pix;
