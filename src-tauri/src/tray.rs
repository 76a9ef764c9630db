//! The tray icon: the server's status, start and stop, the window, quit.

use std::sync::Arc;

use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::server::{ServerControl, ServerStatus};

/// The tray menu's entries that change with the server's state.
pub struct TrayMenu<R: Runtime> {
    status: MenuItem<R>,
    start: MenuItem<R>,
    stop: MenuItem<R>,
}

/// Adds the tray icon and its menu, and shows the server's state in it.
pub fn install<R: Runtime>(app: &tauri::App<R>) -> tauri::Result<()> {
    let status = MenuItem::with_id(app, "status", "Server: starting", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Hearth", true, None::<&str>)?;
    let start = MenuItem::with_id(app, "start", "Start server", true, None::<&str>)?;
    let stop = MenuItem::with_id(app, "stop", "Stop server", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Hearth", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&status, &open, &start, &stop, &quit])?;

    let mut tray = TrayIconBuilder::with_id("hearth").tooltip("Hearth").menu(&menu).on_menu_event(|app, event| match event.id.as_ref() {
        "open" => show_window(app),
        "start" => change_server(app, ServerControl::start_quietly),
        "stop" => change_server(app, ServerControl::stop),
        "quit" => app.exit(0),
        _ => {}
    });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;

    app.manage(TrayMenu { status, start, stop });
    refresh(app.handle());
    Ok(())
}

/// Shows the server's state in the tray menu.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let Some(menu) = app.try_state::<TrayMenu<R>>() else {
        return;
    };
    let status = app.state::<Arc<ServerControl>>().status();
    let (text, running) = match &status {
        ServerStatus::Running { address, .. } => (format!("Server: running on {address}"), true),
        ServerStatus::Stopped => ("Server: stopped".to_owned(), false),
        ServerStatus::Failed { .. } => ("Server: failed to start".to_owned(), false),
    };
    // A menu entry that fails to update is cosmetic, so it is only logged.
    let results = [menu.status.set_text(text), menu.start.set_enabled(!running), menu.stop.set_enabled(running)];
    for error in results.into_iter().filter_map(Result::err) {
        tracing::warn!(error = %error, "failed to update the tray menu");
    }
}

/// Runs a start or stop on its own thread (both block), then updates the
/// tray and reloads the window.
fn change_server<R: Runtime>(app: &AppHandle<R>, change: fn(&ServerControl)) {
    let app = app.clone();
    std::thread::spawn(move || {
        let control = Arc::clone(app.state::<Arc<ServerControl>>().inner());
        change(&control);
        refresh(&app);
        if let Some(window) = app.get_webview_window(crate::MAIN_WINDOW)
            && let Err(error) = window.eval("location.reload()")
        {
            tracing::warn!(error = %error, "failed to reload the window");
        }
    });
}

fn show_window<R: Runtime>(app: &AppHandle<R>) {
    match app.get_webview_window(crate::MAIN_WINDOW) {
        Some(window) => {
            let _ = window.show();
            let _ = window.set_focus();
        }
        None => {
            if let Err(error) = crate::open_main_window(app) {
                tracing::error!(error = %error, "failed to open the window");
            }
        }
    }
}
