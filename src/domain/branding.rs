//! The portal's branding in force (release notes 6.8): the organization and application titles,
//! the colour palette and the icon a Configuration Manager saved, else the config's
//! `[branding]`. Kept in the store beside the member settings, so every engine node serves the
//! same at once; each change is audited.
//!
//! An icon is checked before it is kept: its bytes must be the image type it is sent as (PNG,
//! JPEG, GIF or WebP, told by their signatures; no SVG, which can carry script), within the
//! configured size.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{BrandingConfig, BrandingTexts};
use crate::domain::accounts::audit;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::saved_settings;
use crate::store::{Keyspace, Reader, StoreError};

const TEXTS_KEY: &[u8] = b"branding";
const ICON_KEY: &[u8] = b"branding-icon";

/// The uploaded icon, as the portal fetches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Icon {
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// A strong validator of the bytes (their SHA-256, hex), for caches.
    pub etag: String,
}

/// The titles and palette in force.
pub fn texts(reader: &dyn Reader, config: &BrandingConfig) -> Result<BrandingTexts, StoreError> {
    saved_settings::load(reader, TEXTS_KEY, &config.texts())
}

/// The icon in force, if one was uploaded.
pub fn icon(reader: &dyn Reader) -> Result<Option<Icon>, StoreError> {
    Ok(reader
        .get(Keyspace::MemberSettings, ICON_KEY)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Saves new titles and palette (in the command's write set, with its audit record).
pub fn save_texts(
    op: &mut Op<'_, '_>,
    config: &BrandingConfig,
    new: BrandingTexts,
    reason: &str,
) -> Result<BrandingTexts, Refusal> {
    new.check().map_err(Refusal::invalid)?;
    saved_settings::save(
        op,
        TEXTS_KEY,
        &config.texts(),
        new,
        "branding.update",
        "settings/branding",
        reason,
    )
}

/// Saves a new icon sent as `content_type`, once its bytes are found to be that image type.
pub fn save_icon(
    op: &mut Op<'_, '_>,
    config: &BrandingConfig,
    content_type: &str,
    bytes: Vec<u8>,
    reason: &str,
) -> Result<Icon, Refusal> {
    require_reason(reason)?;
    let declared = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if bytes.is_empty() || bytes.len() > config.max_icon_bytes {
        return Err(Refusal::new(
            Kind::Invalid,
            "bad-icon-size",
            format!(
                "an icon has 1 to {} bytes; this one has {}",
                config.max_icon_bytes,
                bytes.len()
            ),
        ));
    }
    match sniff(&bytes) {
        Some(found) if found == declared => {}
        Some(found) => {
            return Err(Refusal::new(
                Kind::Invalid,
                "bad-icon-type",
                format!("the icon was sent as `{declared}` but its bytes are {found}"),
            ));
        }
        None => {
            return Err(Refusal::new(
                Kind::Invalid,
                "bad-icon-type",
                "an icon is a PNG, JPEG, GIF or WebP image; these bytes are none of them",
            ));
        }
    }
    let icon = Icon {
        content_type: declared,
        etag: Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        bytes,
    };
    op.tx.put(
        Keyspace::MemberSettings,
        ICON_KEY.to_vec(),
        serde_json::to_vec(&icon).expect("an icon serializes"),
    );
    audit::record(
        op,
        "branding.icon",
        "settings/branding",
        Some(reason),
        json!({ "content_type": icon.content_type, "bytes": icon.bytes.len(), "sha256": icon.etag }),
    );
    Ok(icon)
}

fn require_reason(reason: &str) -> Result<(), Refusal> {
    if reason.trim().is_empty() {
        return Err(Refusal::invalid("a reason is required"));
    }
    Ok(())
}

/// The image type the bytes are, by their signature.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_told_by_their_signatures_and_svg_is_none() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n rest"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>"),
            None
        );
        assert_eq!(sniff(b""), None);
    }
}
