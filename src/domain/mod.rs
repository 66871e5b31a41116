//! Domain services over the member store. Today: patients (the synced MPI). Members, tokens,
//! proxies, invitations, tasks, profile updates and audit join here.

pub mod patients;
pub mod pix;
pub mod resources;
