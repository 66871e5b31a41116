//! Who a member is: credentials (passwords, external credentials over OpenID Connect / OAuth
//! 2.0), sign-in with one-time codes, sessions, the waits after failures and the request budget
//! per address, and the secrets all of them keep (random tokens, keyed hashes, argon2).

pub(crate) mod credentials;
pub(crate) mod oidc;
pub(crate) mod otp;
pub(crate) mod secrets;
pub(crate) mod sessions;
pub(crate) mod signin;
pub(crate) mod throttle;
