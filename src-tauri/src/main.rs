//! Hearth's desktop app: the server and its console in one process.
//!
//! The app starts the whole server (`hearth_server::embed`) as `hearth
//! serve` does: the TLS listener for the household's phones and TVs, the
//! admin socket, a scan and the folder watcher. Its window shows the web UI
//! through the `hearth://` scheme, whose handler calls the server's router
//! in process as the host admin ([`scheme`]); WebKitGTK cannot negotiate
//! ML-KEM, so the window never uses a network socket. A tray icon shows the
//! server's state and starts and stops it ([`tray`]). The window's script
//! may call three commands ([`commands`]), as `capabilities/` allows.
//!
//! Closing the window leaves the server running in the tray; "Quit Hearth"
//! in the tray menu stops it.

mod commands;
mod error;
mod scheme;
mod self_check;
mod server;
mod tray;
mod ui;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use hearth_server::config::FileConfig;
use hearth_server::embed::ServeSettings;
use tauri::{AppHandle, RunEvent, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::self_check::SelfCheck;
use crate::server::ServerControl;

/// Label of the main window.
pub const MAIN_WINDOW: &str = "main";

#[derive(Parser)]
#[command(name = "hearth-desktop", version, about = "Hearth home media server with its desktop window")]
struct Cli {
    /// TOML configuration file, as for `hearth serve`.
    #[arg(long, env = "HEARTH_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the database, certificates and caches [default: $XDG_DATA_HOME/hearth].
    #[arg(long, env = "HEARTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A library folder to serve; repeat for several. Folders given once are remembered.
    #[arg(long = "library", value_name = "DIR")]
    libraries: Vec<PathBuf>,
    /// Address and port of the LAN listener [default: 0.0.0.0:8443].
    #[arg(long, env = "HEARTH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Check that the window shows the item titled --expect-title, write the
    /// result as JSON to FILE, and exit: 0 when it passed, 1 when not.
    #[arg(long, value_name = "FILE", requires = "expect_title")]
    self_check: Option<PathBuf>,
    /// Title of an item of the library that the self-check looks for.
    #[arg(long, value_name = "TEXT")]
    expect_title: Option<String>,
    /// Seconds the self-check waits for the title.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    self_check_timeout: u64,
}

fn main() -> Result<()> {
    // First, while the process has one thread: it sets HEARTH_UI_DIR.
    let ui_dir = ui::resolve();

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match &ui_dir {
        Some(dir) => tracing::info!(path = %dir.display(), "showing the web UI"),
        None => tracing::warn!("no built web UI: the window explains how to build it"),
    }

    let cli = Cli::parse();
    let settings = settings(&cli)?;
    let control = Arc::new(ServerControl::new(settings));
    // A failed start is shown in the window and the tray, not fatal.
    control.start_quietly();

    let self_check = match (&cli.self_check, &cli.expect_title) {
        (Some(file), Some(title)) => {
            Some(Arc::new(SelfCheck::new(file.clone(), title.clone(), Duration::from_secs(cli.self_check_timeout))))
        }
        _ => None,
    };

    let mut builder = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(Arc::clone(&control))
        .register_asynchronous_uri_scheme_protocol(scheme::SCHEME, scheme::handle)
        .invoke_handler(tauri::generate_handler![commands::server_status, commands::add_library, commands::create_pairing_offer]);
    if let Some(check) = &self_check {
        builder = builder.manage(Arc::clone(check));
    }
    let app = builder
        .setup(move |app| {
            tray::install(app)?;
            open_main_window(app.handle())?;
            if let Some(check) = &self_check {
                check.spawn(app.handle().clone());
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("failed to start the desktop app")?;

    app.run(move |_app, event| match event {
        // The last window closed: keep serving from the tray.
        RunEvent::ExitRequested { code: None, api, .. } => api.prevent_exit(),
        RunEvent::Exit => control.stop(),
        _ => {}
    });
    Ok(())
}

/// Opens the main window on the UI's start page. Navigation is kept to the
/// `hearth://` scheme: a link elsewhere must not run as the host admin.
pub fn open_main_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let start = scheme::START_URL.parse().expect("START_URL is a valid URL");
    WebviewWindowBuilder::new(app, MAIN_WINDOW, WebviewUrl::CustomProtocol(start))
        .title("Hearth")
        .inner_size(1280.0, 800.0)
        .min_inner_size(480.0, 360.0)
        .on_navigation(|url| {
            let allowed = url.scheme() == scheme::SCHEME && url.host_str() == Some("localhost");
            if !allowed {
                tracing::warn!(url = %url, "navigation away from the Hearth window rejected");
            }
            allowed
        })
        .build()?;
    Ok(())
}

/// Resolves the server's settings: command line, then `HEARTH_*`, then the
/// configuration file, then the defaults, as `hearth serve` does.
fn settings(cli: &Cli) -> Result<ServeSettings> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let mut settings = ServeSettings::from_file(file);
    if let Some(data_dir) = &cli.data_dir {
        settings.data_dir = data_dir.clone();
    }
    settings.libraries.splice(0..0, cli.libraries.iter().cloned());
    if let Some(listen) = cli.listen {
        settings.listen = listen;
    }
    Ok(settings)
}
