//! Who a member is: credentials (passwords, external credentials over OpenID Connect / OAuth
//! 2.0), sign-in with one-time codes, sessions, the waits after failures and the request budget
//! per address, and the secrets all of them keep (random tokens, keyed hashes, argon2).

pub mod credentials;
pub mod oidc;
pub mod otp;
pub mod secrets;
pub mod sessions;
pub mod signin;
pub mod throttle;
