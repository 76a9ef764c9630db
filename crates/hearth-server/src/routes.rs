//! The route table: every route of the server with the guard that decides
//! who may call it.
//!
//! The router is built only from [`table`], so a test that walks the table
//! walks every route the server has.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::http::Method;
use hearth_access::Action;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::state::AppState;
use crate::{api, web};

/// Who may call a route. Every route declares one, so the sweep test can
/// check each against its declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Served to anyone: health, sign-in and pairing.
    Public,
    /// Served to the holder of a media grant in the path, for media
    /// elements that cannot send headers (`crate::access::MediaGrants`).
    Grant,
    /// Needs a session with a valid request proof and, when an action is
    /// named, a policy that allows it.
    Session(Option<Action>),
    /// Served to another node that presents an open link invitation
    /// (`crate::links::invites`), or to an admin session.
    LinkInvite,
}

/// Routes served without a session: the health check, sign-in, the two
/// pairing steps, and the page shell with its scripts and styles.
pub fn public_routes() -> Vec<(Method, &'static str)> {
    table().into_iter().filter(|r| r.guard == Guard::Public).map(|r| (r.method, r.path)).collect()
}

/// One route: method, axum path template, guard and handler.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, with `{id}` for an item id.
    pub path: &'static str,
    /// Who may call it.
    pub guard: Guard,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

/// Lists every route of the server.
pub fn table() -> Vec<Route> {
    use Action::*;
    use Guard::{Grant, Public};
    let any_session = Guard::Session(None);
    let needs = |action| Guard::Session(Some(action));

    vec![
        route(Method::GET, "/api/v1/health", Public, get(api::health)),
        route(Method::GET, "/login", Public, get(web::login_page)),
        route(Method::POST, "/api/v1/login", Public, post(api::login)),
        route(Method::POST, "/api/v1/logout", any_session, post(api::logout)),
        route(Method::GET, "/api/v1/session", any_session, get(api::session)),
        route(Method::GET, "/api/v1/connection", any_session, get(api::connection)),
        // Passkeys: sign-in needs a paired device's proof, like /api/v1/login;
        // each user manages only their own, so no policy action applies.
        route(Method::POST, "/api/v1/passkeys/login/start", Public, post(api::passkeys::login_start)),
        route(Method::POST, "/api/v1/passkeys/login/finish", Public, post(api::passkeys::login_finish)),
        route(Method::POST, "/api/v1/passkeys/register/start", any_session, post(api::passkeys::register_start)),
        route(Method::POST, "/api/v1/passkeys/register/finish", any_session, post(api::passkeys::register_finish)),
        route(Method::GET, "/api/v1/passkeys", any_session, get(api::passkeys::list)),
        route(Method::DELETE, "/api/v1/passkeys/{id}", any_session, delete(api::passkeys::delete)),
        route(Method::GET, "/api/v1/connections", needs(ManageServer), get(api::connections)),
        route(Method::GET, "/api/v1/items", needs(BrowseLibrary), get(api::items::list)),
        route(Method::GET, "/api/v1/items/in-progress", needs(BrowseLibrary), get(api::items::in_progress)),
        route(Method::GET, "/api/v1/items/facets", needs(BrowseLibrary), get(api::items::facets)),
        route(Method::GET, "/api/v1/items/{id}", needs(ViewItem), get(api::items::show)),
        route(Method::GET, "/api/v1/items/{id}/thumbnail", needs(ViewItem), get(api::items::thumbnail)),
        route(Method::GET, "/api/v1/items/{id}/tracks", needs(ViewItem), get(api::items::tracks)),
        route(Method::GET, "/api/v1/items/{id}/stream", needs(PlayItem), get(api::items::stream)),
        route(Method::PUT, "/api/v1/items/{id}/play-state", needs(PlayItem), put(api::items::set_play_state)),
        route(Method::POST, "/api/v1/items/{id}/grant", needs(PlayItem), post(api::account::grant)),
        route(Method::PUT, "/api/v1/items/{id}/rating", needs(ManagePolicy), put(api::items::set_rating)),
        route(Method::GET, "/media/{grant}/stream", Grant, get(api::account::grant_stream)),
        route(Method::GET, "/media/{grant}/thumbnail", Grant, get(api::account::grant_thumbnail)),
        route(Method::POST, "/api/v1/items/{id}/playback", needs(PlayItem), post(api::playback::start)),
        route(Method::GET, "/media/{grant}/subtitles/{index}", Grant, get(api::playback::subtitle)),
        route(Method::GET, "/media/{grant}/trickplay/{file}", Grant, get(api::playback::trickplay_file)),
        route(Method::GET, "/hls/{grant}/master.m3u8", Grant, get(api::playback::master)),
        route(Method::GET, "/hls/{grant}/key", Grant, get(api::playback::grant_key)),
        route(Method::GET, "/hls/{grant}/{rendition}/{file}", Grant, get(api::playback::rendition_file)),
        route(Method::GET, "/api/v1/hls/{grant}/key", needs(PlayItem), get(api::playback::key)),
        route(Method::DELETE, "/api/v1/hls/{grant}", needs(PlayItem), delete(api::playback::stop)),
        route(Method::GET, "/api/v1/admin/transcodes", needs(ManageServer), get(api::playback::status)),
        route(Method::GET, "/api/v1/keys", any_session, get(api::keys::list)),
        route(Method::POST, "/api/v1/admin/rotate-keys", needs(ManageServer), post(api::keys::rotate)),
        route(Method::GET, "/api/v1/admin/node", Guard::LinkInvite, get(api::links::node)),
        route(Method::GET, "/api/v1/admin/links", needs(ManageServer), get(api::links::list)),
        route(Method::POST, "/api/v1/admin/links", needs(ManageServer), post(api::links::create)),
        route(Method::POST, "/api/v1/admin/links/offer", Guard::LinkInvite, post(api::links::offer)),
        route(Method::POST, "/api/v1/admin/links/finish", Guard::LinkInvite, post(api::links::finish)),
        route(Method::POST, "/api/v1/admin/link-invites", needs(ManageServer), post(api::links::create_invite)),
        route(Method::GET, "/api/v1/admin/devices", needs(ManageDevices), get(api::account::devices)),
        route(Method::POST, "/api/v1/admin/devices/{id}/revoke", needs(ManageDevices), post(api::account::revoke_device)),
        route(Method::POST, "/api/v1/admin/devices/{id}/rename", needs(ManageDevices), post(api::account::rename_device)),
        route(Method::GET, "/api/v1/admin/sessions", needs(ManageDevices), get(api::sessions::list)),
        route(Method::POST, "/api/v1/admin/sessions/{handle}/end", needs(ManageDevices), post(api::sessions::end)),
        route(Method::GET, "/api/v1/admin/users", needs(ManageUsers), get(api::account::users)),
        route(Method::POST, "/api/v1/admin/users/{id}/disable", needs(ManageUsers), post(api::account::disable_user)),
        route(Method::POST, "/api/v1/admin/users/{id}/enable", needs(ManageUsers), post(api::account::enable_user)),
        route(Method::POST, "/api/v1/admin/users/{id}/role", needs(ManageUsers), post(api::account::set_role)),
        route(Method::GET, "/api/v1/admin/audit", needs(ReadAudit), get(api::account::audit)),
        route(Method::GET, "/api/v1/admin/guard/alerts", needs(ReadAudit), get(api::guard::alerts)),
        route(Method::GET, "/api/v1/admin/guard/bans", needs(ReadAudit), get(api::guard::bans)),
        route(Method::POST, "/api/v1/admin/guard/bans", needs(ManageServer), post(api::guard::ban)),
        route(Method::DELETE, "/api/v1/admin/guard/bans/{source}", needs(ManageServer), delete(api::guard::unban)),
        route(Method::GET, "/api/v1/admin/guard/records", needs(ReadAudit), get(api::guard::records)),
        route(Method::GET, "/api/v1/admin/guard/records/{id}", needs(ReadAudit), get(api::guard::record)),
        route(Method::GET, "/api/v1/admin/libraries", needs(ManageServer), get(api::libraries::list)),
        route(Method::POST, "/api/v1/admin/libraries", needs(ManageServer), post(api::libraries::add)),
        route(Method::DELETE, "/api/v1/admin/libraries/{id}", needs(ManageServer), delete(api::libraries::remove)),
        route(Method::GET, "/api/v1/scan", needs(BrowseLibrary), get(api::scan::status)),
        route(Method::POST, "/api/v1/scan", needs(ManageServer), post(api::scan::start)),
        route(Method::GET, "/api/v1/scan/events", needs(BrowseLibrary), get(api::scan::events)),
        route(Method::GET, "/api/v1/scan/problems", needs(ManageServer), get(api::scan::problems)),
        route(Method::POST, "/api/v1/pair/start", Public, post(api::pairing::start)),
        route(Method::POST, "/api/v1/pair/finish", Public, post(api::pairing::finish)),
        route(Method::POST, "/api/v1/admin/pairing-offers", needs(ManageDevices), post(api::pairing::create_offer)),
        // The page shell and its scripts hold no household data; every
        // request they make for data is signed.
        route(Method::GET, "/", Public, get(web::index_page)),
        route(Method::GET, "/app.js", Public, get(web::app_js)),
        route(Method::GET, "/app.css", Public, get(web::app_css)),
        route(Method::GET, "/pair", Public, get(web::pair_page)),
        route(Method::GET, "/pair.js", Public, get(web::pair_js)),
        route(Method::GET, "/device.js", Public, get(web::device_js)),
        route(Method::GET, "/spake2.js", Public, get(web::spake2_js)),
        route(Method::GET, "/passkeys.js", Public, get(web::passkeys_js)),
        route(Method::GET, "/playback.js", Public, get(web::playback_js)),
        route(Method::GET, "/vendor/hls.min.mjs", Public, get(web::hls_js)),
        route(Method::GET, "/ui", Public, get(web::ui_dir::ui_index)),
        route(Method::GET, "/ui/", Public, get(web::ui_dir::ui_index)),
        route(Method::GET, "/ui/{*path}", Public, get(web::ui_dir::ui_file)),
    ]
}

/// Returns the guard of the route with `method` and path template
/// `template`. A route the table does not list needs a session.
pub fn guard_of(method: &Method, template: &str) -> Guard {
    static GUARDS: LazyLock<HashMap<(Method, &'static str), Guard>> =
        LazyLock::new(|| table().into_iter().map(|r| ((r.method, r.path), r.guard)).collect());
    let method = if method == Method::HEAD { &Method::GET } else { method };
    GUARDS.get(&(method.clone(), template)).copied().unwrap_or(Guard::Session(None))
}

/// Builds the router from [`table`]. Routes on one path with different
/// methods are merged by axum.
pub fn router() -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, r| router.route(r.path, r.handler))
}

/// Returns whether `method` and `path` match a public route exactly. HEAD is
/// treated as GET, as axum serves it.
pub fn is_public(method: &Method, path: &str) -> bool {
    guard_of(method, path) == Guard::Public
}

fn route(method: Method, path: &'static str, guard: Guard, handler: MethodRouter<AppState>) -> Route {
    Route { method, path, guard, handler }
}
