//! The commands the window's script may call (`invoke`), each allowed by
//! name in `capabilities/default.json`.
//!
//! They reach the server in process as the host admin, through the same
//! API routes a signed-in admin uses (docs/api.md), so the server's own
//! checks and audit log apply.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tauri::State;
use tauri_plugin_dialog::DialogExt;

use crate::error::DesktopError;
use crate::server::{ServerControl, ServerStatus};

/// `server_status`: whether the embedded server runs, and its LAN address.
#[tauri::command]
pub fn server_status(control: State<'_, Arc<ServerControl>>) -> ServerStatus {
    control.status()
}

/// A library folder, as `POST /api/v1/admin/libraries` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Library {
    /// The library's id.
    pub id: i64,
    /// Its folder on this host.
    pub path: String,
    /// Items indexed in it so far.
    pub items: u64,
    /// Whether the folder is there now.
    pub available: bool,
}

/// `add_library`: opens the native folder picker and adds the chosen folder
/// as a library, which starts a scan. Returns `None` when the person cancels.
#[tauri::command]
pub async fn add_library(app: tauri::AppHandle, control: State<'_, Arc<ServerControl>>) -> Result<Option<Library>, DesktopError> {
    let in_process = control.in_process()?;
    let picked = tauri::async_runtime::spawn_blocking(move || app.dialog().file().set_title("Add a library folder").blocking_pick_folder())
        .await
        .map_err(|_| DesktopError::Cancelled { path: LIBRARIES })?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let folder = picked.into_path().map_err(|error| DesktopError::Dialog(error.into()))?;
    let Some(path) = folder.to_str() else {
        return Err(DesktopError::PathNotUtf8 { path: folder.to_string_lossy().into_owned() });
    };

    let library = in_process.post_json(LIBRARIES, &AddLibrary { path }).await?;
    Ok(Some(library))
}

/// The person a pairing offer is for, serialized as the body of `POST
/// /api/v1/admin/pairing-offers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferFor {
    /// A person without an account yet; they choose a password when they
    /// pair.
    NewUser {
        /// The new user's name.
        name: String,
        /// `admin`, `adult`, `teen` or `child`.
        role: String,
    },
    /// Another device of an existing user, by name.
    User(String),
}

/// A pairing offer to show large: the link as a QR code, and the code to
/// type where scanning is not possible.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingOffer {
    /// The offer's id.
    pub offer_id: String,
    /// The one-time code, `XXXX-XXXX`.
    pub code: String,
    /// When the offer ends, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// The link for the new device, with the LAN address of this host.
    pub link: String,
    /// The link as an SVG QR code.
    pub qr_svg: String,
}

/// `create_pairing_offer`: a one-time offer for a new device, valid 10
/// minutes, whose link names this host's LAN address.
#[tauri::command]
pub async fn create_pairing_offer(control: State<'_, Arc<ServerControl>>, offer: OfferFor) -> Result<PairingOffer, DesktopError> {
    let in_process = control.in_process()?;
    in_process.post_json(PAIRING_OFFERS, &offer).await
}

#[derive(Serialize)]
struct AddLibrary<'a> {
    path: &'a str,
}

const LIBRARIES: &str = "/api/v1/admin/libraries";
const PAIRING_OFFERS: &str = "/api/v1/admin/pairing-offers";

#[cfg(test)]
mod tests {
    use super::OfferFor;

    #[test]
    fn offer_bodies_match_the_api() {
        let new_user = OfferFor::NewUser { name: "sam".to_owned(), role: "teen".to_owned() };
        assert_eq!(serde_json::to_value(&new_user).unwrap(), serde_json::json!({"new_user": {"name": "sam", "role": "teen"}}));
        let user = OfferFor::User("ana".to_owned());
        assert_eq!(serde_json::to_value(&user).unwrap(), serde_json::json!({"user": "ana"}));
    }
}
