//! `tributary api-key`: makes a new API key for an `[[api_clients]]` entry. The key is printed
//! once, on stderr; stdout gets the entry to add to the config, which holds only its SHA-256, so
//! `tributary api-key ... >> config/tributary.toml` keeps the key itself out of the file.

use std::process::ExitCode;

use clap::Args;

use crate::config::{ROLES, SCOPES};
use crate::domain::identity::secrets;

#[derive(Args)]
pub struct ApiKeyArgs {
    /// The client's name (the audit trail calls it `client:<name>`).
    #[arg(long)]
    name: String,
    /// A role, repeatable: direct-enrollment-user, member-account-manager,
    /// enrollment-request-agent, enrollment-exception-agent, configuration-manager,
    /// integration-analyst, metrics-reader, external-system.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A scope of an external-system client, repeatable: enroll, self-service, invite, tasks,
    /// fhir-read, fhir-write.
    #[arg(long = "scope")]
    scopes: Vec<String>,
}

pub fn run(args: ApiKeyArgs) -> ExitCode {
    match entry(&args) {
        Ok((key, entry)) => {
            eprintln!("API key for `{}` (shown once, keep it secret): {key}", args.name);
            print!("{entry}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// A fresh key and its `[[api_clients]]` entry.
fn entry(args: &ApiKeyArgs) -> Result<(String, String), String> {
    let name_ok = !args.name.is_empty()
        && args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(format!(
            "`{}` is not a client name (letters, digits, - and _)",
            args.name
        ));
    }
    if args.roles.is_empty() {
        return Err(format!("give at least one --role ({})", ROLES.join(", ")));
    }
    if let Some(role) = args.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        return Err(format!("`{role}` is not a role ({})", ROLES.join(", ")));
    }
    if let Some(scope) = args.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(format!("`{scope}` is not a scope ({})", SCOPES.join(", ")));
    }
    let key = secrets::new_token();
    let mut entry = format!(
        "\n[[api_clients]]\nname = \"{}\"\nkey_sha256 = \"{}\"\nroles = {:?}\n",
        args.name,
        secrets::sha256_hex(&key),
        args.roles
    );
    if !args.scopes.is_empty() {
        entry.push_str(&format!("scopes = {:?}\n", args.scopes));
    }
    Ok((key, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn args(name: &str, roles: &[&str], scopes: &[&str]) -> ApiKeyArgs {
        ApiKeyArgs {
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_entry_is_valid_config_that_knows_the_key_by_its_hash_only() {
        let (key, entry) = entry(&args("emr", &["external-system"], &["fhir-read", "fhir-write"])).unwrap();
        assert!(!entry.contains(&key));
        let config = Config::parse(&entry, "t.toml").unwrap();
        let clients = crate::domain::accounts::roles::Clients::from_config(&config.api_clients);
        let caller = clients.authenticate(&key).expect("the key is known");
        assert_eq!(caller.name, "emr");
        assert!(caller.has_scope(crate::domain::accounts::roles::Scope::FhirWrite));
        assert!(clients.authenticate("another key").is_none());
    }

    #[test]
    fn unknown_roles_and_scopes_and_bad_names_are_refused() {
        assert!(entry(&args("a", &[], &[])).unwrap_err().contains("--role"));
        assert!(entry(&args("a", &["root"], &[])).unwrap_err().contains("`root`"));
        assert!(
            entry(&args("a", &["external-system"], &["all"]))
                .unwrap_err()
                .contains("`all`")
        );
        assert!(entry(&args("a b", &["integration-analyst"], &[])).is_err());
    }
}
