//! Every route of the router, walked from the same table the router is
//! built from, rejects requests without a signed session. Only the short
//! public list is served without one, and every route declares its guard.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hearth_catalog::{Catalog, ScanConfig};
use hearth_server::admin_socket::HostAdmin;
use hearth_server::connection::ConnectionLog;
use hearth_server::routes::{Guard, is_public, public_routes, table};
use hearth_server::state::{AppState, ScanEvents};
use hearth_server::thumbnails::ThumbnailCache;
use tower::ServiceExt;


fn app(dir: &tempfile::TempDir) -> axum::Router {
    let store = hearth_store::Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
    let store_for_access = Arc::clone(&store);
    let catalog = Arc::new(Catalog::open(store, ScanConfig::default()).unwrap());
    let state = AppState {
        catalog,
        connections: Arc::new(ConnectionLog::default()),
        scan_events: ScanEvents::new(),
        thumbnails: Arc::new(ThumbnailCache::new(dir.path().join("thumbnails"))),
        rotation: None,
        links: None,
        access: hearth_server::access::Access::open(
            store_for_access,
            hearth_access::PasswordHasher::new(hearth_access::PasswordParams::INSECURE_FOR_TESTS, 2).unwrap(),
            &hearth_server::config::AccessSection { utc_offset_minutes: Some(0), session_idle_seconds: None },
        )
        .unwrap(),
        playbacks: Arc::new(hearth_server::api::playback::Playbacks::new(hearth_media::hls::TranscodeManager::new(
            hearth_server::api::playback::settings(&hearth_server::config::TranscodeSection::default()).unwrap(),
        ))),
        trickplay: Arc::new(hearth_server::trickplay::Trickplay::new(dir.path().join("trickplay"))),
        guard: hearth_server::guard::GuardService::in_memory(),
    };
    hearth_server::app(state)
}

/// Fills a route template: `{id}` becomes a well-formed item id.
fn concrete(path: &str) -> String {
    path.replace("{id}", "0123456789abcdef0123456789abcdef")
}

async fn status(app: &axum::Router, method: Method, path: &str, headers: &[(header::HeaderName, &str)]) -> StatusCode {
    send(app, method, path, headers, false).await
}

/// Sends a request, as a host command on the admin socket when `host_admin`.
async fn send(app: &axum::Router, method: Method, path: &str, headers: &[(header::HeaderName, &str)], host_admin: bool) -> StatusCode {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let body = if path == "/api/v1/login" { Body::from("token=wrong") } else { Body::empty() };
    let mut request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body).unwrap();
    if host_admin {
        request.extensions_mut().insert(HostAdmin);
    }
    app.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn public_list_is_short_and_explicit() {
    let mut public: Vec<String> = public_routes().iter().map(|(m, p)| format!("{m} {p}")).collect();
    public.sort();

    assert_eq!(
        public,
        [
            "GET /",
            "GET /api/v1/health",
            "GET /app.css",
            "GET /app.js",
            "GET /device.js",
            "GET /login",
            "GET /pair",
            "GET /pair.js",
            "GET /passkeys.js",
            "GET /playback.js",
            "GET /spake2.js",
            "GET /ui",
            "GET /ui/",
            "GET /ui/{*path}",
            "GET /vendor/hls.min.mjs",
            "POST /api/v1/login",
            "POST /api/v1/pair/finish",
            "POST /api/v1/pair/start",
            "POST /api/v1/passkeys/login/finish",
            "POST /api/v1/passkeys/login/start",
        ]
    );
}

#[tokio::test]
async fn routes_without_policy_action_are_few() {
    // A route guarded by a session but no action skips the policy; only
    // these may do so. A new data route must name its action.
    let mut session_only: Vec<String> = table()
        .iter()
        .filter(|r| r.guard == Guard::Session(None))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    session_only.sort();

    assert_eq!(
        session_only,
        [
            "DELETE /api/v1/passkeys/{id}",
            "GET /api/v1/connection",
            "GET /api/v1/keys",
            "GET /api/v1/passkeys",
            "GET /api/v1/session",
            "POST /api/v1/logout",
            "POST /api/v1/passkeys/register/finish",
            "POST /api/v1/passkeys/register/start",
        ]
    );
}

#[tokio::test]
async fn grant_routes_reject_unknown_grants() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let grant_routes: Vec<_> = table().into_iter().filter(|r| r.guard == Guard::Grant).collect();
    assert_eq!(grant_routes.len(), 7);

    for route in grant_routes {
        let path = route.path.replace("{grant}", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let anonymous = status(&app, route.method.clone(), &path, &[]).await;
        let as_admin = send(&app, route.method.clone(), &path, &[], true).await;

        assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{}", route.path);
        assert_eq!(as_admin, StatusCode::UNAUTHORIZED, "{} accepted an admin in place of a grant", route.path);
    }
}

#[tokio::test]
async fn every_route_requires_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let routes = table();
    assert!(routes.len() >= 15, "route table looks truncated: {} routes", routes.len());

    for route in &routes {
        let path = concrete(route.path);
        let no_token = status(&app, route.method.clone(), &path, &[]).await;
        // Credentials of the first release, which no longer exist.
        let wrong_bearer = status(&app, route.method.clone(), &path, &[(header::AUTHORIZATION, "Bearer not-the-token")]).await;
        let wrong_cookie = status(&app, route.method.clone(), &path, &[(header::COOKIE, "hearth_token=not-the-token")]).await;

        if is_public(&route.method, route.path) {
            assert_ne!(no_token, StatusCode::UNAUTHORIZED, "public route {} {} rejected", route.method, route.path);
            continue;
        }
        assert_eq!(no_token, StatusCode::UNAUTHORIZED, "{} {} without token", route.method, route.path);
        assert_eq!(wrong_bearer, StatusCode::UNAUTHORIZED, "{} {} with a wrong bearer token", route.method, route.path);
        assert_eq!(wrong_cookie, StatusCode::UNAUTHORIZED, "{} {} with a wrong cookie", route.method, route.path);
        if route.method == Method::GET {
            let head = status(&app, Method::HEAD, &path, &[]).await;
            assert_eq!(head, StatusCode::UNAUTHORIZED, "HEAD {} without token", route.path);
        }
    }
}

#[tokio::test]
async fn every_route_is_routed_for_host_admin() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);

    for route in table().into_iter().filter(|r| r.guard != Guard::Grant) {
        let path = concrete(route.path);
        let answer = send(&app, route.method.clone(), &path, &[], true).await;

        assert_ne!(answer, StatusCode::UNAUTHORIZED, "{} {} rejected the host admin", route.method, route.path);
        assert_ne!(answer, StatusCode::METHOD_NOT_ALLOWED, "{} {} is not routed", route.method, route.path);
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_require_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let probes = [
        (Method::GET, "/.env"),
        (Method::GET, "/api/v1/items/../../etc/passwd"),
        (Method::GET, "/api/v2/items"),
        (Method::DELETE, "/api/v1/items/0123456789abcdef0123456789abcdef"),
        (Method::PUT, "/api/v1/health"),
        (Method::GET, "/login/../api/v1/items"),
    ];

    for (method, path) in probes {
        let found = status(&app, method.clone(), path, &[]).await;
        assert_eq!(found, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test]
async fn token_sign_in_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("token=admin-token-for-tests"))
        .unwrap();

    let response = app.oneshot(request).await.unwrap();

    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(response.headers().get(header::SET_COOKIE).is_none(), "a form sign-in still sets a cookie");
}

#[tokio::test]
async fn invalid_list_parameters_name_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let mut request = Request::builder().uri("/api/v1/items?kind=movies").body(Body::empty()).unwrap();
    request.extensions_mut().insert(HostAdmin);

    let response = app.oneshot(request).await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("movies"), "{text}");
    assert!(text.contains("video, audio or image"), "{text}");
}
