//! The member's bills (issue 17, release notes 6.5): `[bills]` names the payment gateway a
//! member is sent to for a bill (a URL template) and the key file whose secret the engine and
//! the gateway share, to sign the link and to check the gateway's payment notices.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// `[bills]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillsConfig {
    /// The gateway's page for one bill: `{bill}`, `{amount}`, `{currency}` and `{signature}`
    /// are replaced (URL-encoded). None: bills are listed and downloaded, not paid here.
    pub payment_url: Option<Spanned<String>>,
    /// 64 hex digits shared with the gateway (HMAC-SHA256 key), created when missing; relative
    /// to the data folder.
    pub gateway_key_file: PathBuf,
}

impl Default for BillsConfig {
    fn default() -> BillsConfig {
        BillsConfig {
            payment_url: None,
            gateway_key_file: PathBuf::from("payment-gateway.key"),
        }
    }
}

impl super::Config {
    /// Checks `[bills]`: a payment URL is http(s) and names the bill and the signature.
    pub(super) fn validate_bills(&self) -> Result<(), super::ConfigError> {
        let Some(url) = &self.bills.payment_url else {
            return Ok(());
        };
        let text = url.get_ref();
        let web = text.starts_with("https://") || text.starts_with("http://");
        if !web || !text.contains("{bill}") || !text.contains("{signature}") {
            return Err(self.error_at(
                url.span(),
                "bills.payment_url".into(),
                "an http(s) URL with {bill} and {signature} in it (and {amount}, {currency} if the gateway wants them)".into(),
            ));
        }
        Ok(())
    }
}
