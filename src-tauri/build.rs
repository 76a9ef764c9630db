//! Generates the Tauri context and a permission for each app command, so
//! that a window may call only the commands its capability names
//! (capabilities/).

fn main() {
    let commands = tauri_build::AppManifest::new().commands(&["server_status", "add_library", "create_pairing_offer"]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(commands)).expect("tauri build script failed");
}
