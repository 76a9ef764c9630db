//! The OpenAPI 3.1 document of the HTTP API, built from the route table.
//!
//! Every route of [`routes::table`] under `/api/`, `/media/` and `/hls/`
//! appears with its guard as the security requirement, and [`describe`]
//! gives each its summary and the Rust types of its bodies, whose schemas
//! come from their `ToSchema` derives. A route without a description fails
//! the build of the document, so a new route cannot go undocumented.
//! `cargo run -p hearth-server --example openapi` prints the document;
//! docs/openapi.json is that output,
//! and the web UI's API types are generated from it (ui/src/api/schema.d.ts).

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Paths, RefOr, Required, ResponseBuilder,
    Responses, ResponsesBuilder, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::api;
use crate::routes::{self, Guard};

/// Collected component schemas, by name.
type Schemas = Vec<(String, RefOr<Schema>)>;

/// A request or response body: its media type and schema.
type Body = fn(&mut Schemas) -> (&'static str, RefOr<Schema>);

/// What the document says about one route.
struct Described {
    summary: &'static str,
    request: Option<Body>,
    /// Status code of success and its body; `None` for no content.
    success: (&'static str, Option<Body>),
}

/// Registers `T` (and the types it names) and returns a reference to it.
fn json<T: ToSchema>(schemas: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
    ("application/json", RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name())))
}

/// Registers `T` and returns an array of it.
fn json_list<T: ToSchema>(schemas: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    let (media, item) = json::<T>(schemas);
    (media, RefOr::T(Schema::Array(utoipa::openapi::schema::ArrayBuilder::new().items(item).build())))
}

fn any_json(_: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    ("application/json", RefOr::T(Schema::Object(ObjectBuilder::new().build())))
}

fn binary(media: &'static str) -> (&'static str, RefOr<Schema>) {
    let schema = ObjectBuilder::new().schema_type(Type::String).content_media_type("application/octet-stream").build();
    (media, RefOr::T(Schema::Object(schema)))
}

fn jpeg(_: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    binary("image/jpeg")
}

fn media_file(_: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    binary("application/octet-stream")
}

fn octets(_: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    binary("application/octet-stream")
}

fn webvtt(_: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    ("text/vtt", RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::String).build())))
}

fn playlist(_: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    ("application/vnd.apple.mpegurl", RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::String).build())))
}

fn event_stream(_: &mut Schemas) -> (&'static str, RefOr<Schema>) {
    ("text/event-stream", RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::String).build())))
}

/// Returns the description of the API route `method` `path`, or `None`
/// for a page or script route, which the document leaves out.
fn describe(method: &str, path: &str) -> Option<Described> {
    use crate::api::account::{AuditPageView, DeviceView, GrantAnswer, LoginAnswer, LoginBody, RenameBody, RoleBody, UserView};
    use crate::api::items::{InProgressList, PlayStateBody, RatingBody, TrackList};
    use crate::api::libraries::{AddBody, LibraryView};
    use crate::api::pairing::{FinishBody, FinishResponse, OfferBody, OfferView, StartBody, StartResponse};
    use crate::api::playback::{PlaybackAnswer, PlaybackRequest};
    use crate::connection::ConnectionInfo;
    use crate::rotation::{PublishedKey, RotationReport};
    use hearth_catalog::{Facets, Item, ItemSummary, Page, Problem};

    let d = |summary, request, success| Some(Described { summary, request, success });
    let none: Option<Body> = None;
    match (method, path) {
        ("GET", "/api/v1/health") => d("Server status and the caller's TLS connection", none, ("200", Some(json::<api::Health>))),
        ("POST", "/api/v1/login") => d("Sign in on a paired device with name and password", Some(json::<LoginBody>), ("200", Some(json::<LoginAnswer>))),
        ("POST", "/api/v1/logout") => d("End the caller's session", none, ("204", None)),
        ("GET", "/api/v1/session") => d("The caller's session", none, ("200", Some(json::<api::SessionView>))),
        ("GET", "/api/v1/connection") => d("The caller's own TLS connection and its key exchange", none, ("200", Some(json::<ConnectionInfo>))),
        ("POST", "/api/v1/passkeys/login/start") => d("Start a passkey sign-in (WebAuthn options)", Some(any_json), ("200", Some(any_json))),
        ("POST", "/api/v1/passkeys/login/finish") => d("Finish a passkey sign-in", Some(any_json), ("200", Some(json::<LoginAnswer>))),
        ("POST", "/api/v1/passkeys/register/start") => d("Start registering a passkey (WebAuthn options)", Some(any_json), ("200", Some(any_json))),
        ("POST", "/api/v1/passkeys/register/finish") => d("Finish registering a passkey", Some(any_json), ("200", Some(json::<api::passkeys::PasskeyView>))),
        ("GET", "/api/v1/passkeys") => d("The caller's passkeys", none, ("200", Some(json_list::<api::passkeys::PasskeyView>))),
        ("DELETE", "/api/v1/passkeys/{id}") => d("Remove one of the caller's passkeys", none, ("204", None)),
        ("GET", "/api/v1/connections") => d("Recent TLS connections with their key exchange", none, ("200", Some(json_list::<ConnectionInfo>))),
        ("GET", "/api/v1/items") => d("One page of items, searched, filtered and sorted", none, ("200", Some(json::<Page<ItemSummary>>))),
        ("GET", "/api/v1/items/in-progress") => d("Continue watching: items started and not finished", none, ("200", Some(json::<InProgressList>))),
        ("GET", "/api/v1/items/facets") => d("Years and genres for the filter menus", none, ("200", Some(json::<Facets>))),
        ("GET", "/api/v1/items/{id}") => d("Everything about one item", none, ("200", Some(json::<Item>))),
        ("GET", "/api/v1/items/{id}/thumbnail") => d("The item's thumbnail", none, ("200", Some(jpeg))),
        ("GET", "/api/v1/items/{id}/tracks") => d("The item's audio and subtitle tracks", none, ("200", Some(json::<TrackList>))),
        ("GET", "/api/v1/items/{id}/stream") => d("The file, with range requests", none, ("200", Some(media_file))),
        ("PUT", "/api/v1/items/{id}/play-state") => d("Save the caller's position in an item", Some(json::<PlayStateBody>), ("204", None)),
        ("POST", "/api/v1/items/{id}/grant") => d("A media grant for elements that cannot sign", none, ("200", Some(json::<GrantAnswer>))),
        ("PUT", "/api/v1/items/{id}/rating") => d("Set or clear an item's content rating", Some(json::<RatingBody>), ("204", None)),
        ("GET", "/media/{grant}/stream") => d("The file on a media grant", none, ("200", Some(media_file))),
        ("GET", "/media/{grant}/thumbnail") => d("The thumbnail on a media grant", none, ("200", Some(jpeg))),
        ("POST", "/api/v1/items/{id}/playback") => d("Direct play or HLS for this client", Some(json::<PlaybackRequest>), ("200", Some(json::<PlaybackAnswer>))),
        ("GET", "/media/{grant}/subtitles/{index}") => d("A subtitle track as WebVTT", none, ("200", Some(webvtt))),
        ("GET", "/media/{grant}/trickplay/{file}") => d("Trickplay index (index.vtt) or sprite sheet (sheet-N.jpg)", none, ("200", Some(media_file))),
        ("GET", "/hls/{grant}/master.m3u8") => d("The multivariant playlist", none, ("200", Some(playlist))),
        ("GET", "/hls/{grant}/key") => d("The segment key, for a native player's playback", none, ("200", Some(octets))),
        ("GET", "/hls/{grant}/{rendition}/{file}") => d("A media playlist, init segment or media segment", none, ("200", Some(media_file))),
        ("GET", "/api/v1/hls/{grant}/key") => d("The segment key, to the playback's own session", none, ("200", Some(octets))),
        ("DELETE", "/api/v1/hls/{grant}") => d("Stop a playback and its transcodes", none, ("204", None)),
        ("GET", "/api/v1/admin/transcodes") => d("Transcoder counters and the HLS playbacks", none, ("200", Some(json::<api::playback::TranscodesView>))),
        ("GET", "/api/v1/keys") => d("The server's signing keys, current and retired", none, ("200", Some(json_list::<PublishedKey>))),
        ("POST", "/api/v1/admin/rotate-keys") => d("Emergency rotation of the TLS certificate and signing key", Some(any_json), ("200", Some(json::<RotationReport>))),
        ("GET", "/api/v1/admin/node") => d("This node's identity and link key (X-Wing)", none, ("200", Some(any_json))),
        ("GET", "/api/v1/admin/links") => d("Link keys with other nodes", none, ("200", Some(any_json))),
        ("POST", "/api/v1/admin/links") => d("Set up a link with another node", Some(any_json), ("200", Some(any_json))),
        ("POST", "/api/v1/admin/links/offer") => d("Another node's link offer", Some(any_json), ("200", Some(any_json))),
        ("POST", "/api/v1/admin/links/finish") => d("Another node's link confirmation", Some(any_json), ("200", Some(any_json))),
        ("POST", "/api/v1/admin/link-invites") => d("A one-time invitation for another node", none, ("200", Some(any_json))),
        ("GET", "/api/v1/admin/devices") => d("Every paired device", none, ("200", Some(json_list::<DeviceView>))),
        ("POST", "/api/v1/admin/devices/{id}/revoke") => d("Revoke a device; its sessions and grants end", none, ("204", None)),
        ("POST", "/api/v1/admin/devices/{id}/rename") => d("Rename a device", Some(json::<RenameBody>), ("204", None)),
        ("GET", "/api/v1/admin/sessions") => d("Signed-in devices with their latest key exchange", none, ("200", Some(json_list::<api::sessions::SessionView>))),
        ("POST", "/api/v1/admin/sessions/{handle}/end") => d("Sign a session out", none, ("204", None)),
        ("GET", "/api/v1/admin/users") => d("Every user", none, ("200", Some(json_list::<UserView>))),
        ("POST", "/api/v1/admin/users/{id}/disable") => d("Disable a user", none, ("204", None)),
        ("POST", "/api/v1/admin/users/{id}/enable") => d("Enable a disabled user", none, ("204", None)),
        ("POST", "/api/v1/admin/users/{id}/role") => d("Give a user another role", Some(json::<RoleBody>), ("204", None)),
        ("GET", "/api/v1/admin/audit") => d("Policy decisions, newest first", none, ("200", Some(json::<AuditPageView>))),
        ("GET", "/api/v1/admin/guard/alerts") => d("The guard's alerts, newest first, and its mode", none, ("200", Some(json::<api::guard::AlertsView>))),
        ("GET", "/api/v1/admin/guard/bans") => d("Addresses the guard bans now", none, ("200", Some(json_list::<crate::guard::BanView>))),
        ("POST", "/api/v1/admin/guard/bans") => d("Ban an address by hand", Some(json::<api::guard::BanBody>), ("201", Some(json_list::<crate::guard::BanView>))),
        ("DELETE", "/api/v1/admin/guard/bans/{source}") => d("Lift a ban or rate limit", none, ("204", None)),
        ("GET", "/api/v1/admin/guard/records") => d("Forensic records of bans, newest first", none, ("200", Some(json_list::<crate::guard::ForensicRecord>))),
        ("GET", "/api/v1/admin/guard/records/{id}") => d("One forensic record with the requests that led to it", none, ("200", Some(json::<crate::guard::ForensicRecord>))),
        ("GET", "/api/v1/admin/libraries") => d("Library folders", none, ("200", Some(json_list::<LibraryView>))),
        ("POST", "/api/v1/admin/libraries") => d("Add a library folder and scan it", Some(json::<AddBody>), ("201", Some(json::<LibraryView>))),
        ("DELETE", "/api/v1/admin/libraries/{id}") => d("Forget a library folder and its items", none, ("204", None)),
        ("GET", "/api/v1/scan") => d("Whether a scan runs, and its latest progress", none, ("200", Some(json::<api::scan::ScanStatus>))),
        ("POST", "/api/v1/scan") => d("Scan every library again", none, ("202", None)),
        ("GET", "/api/v1/scan/events") => d("Scan progress as server-sent events", none, ("200", Some(event_stream))),
        ("GET", "/api/v1/scan/problems") => d("Files the scanner could not index, with reasons", none, ("200", Some(json_list::<Problem>))),
        ("POST", "/api/v1/pair/start") => d("Pairing, step one (SPAKE2)", Some(json::<StartBody>), ("200", Some(json::<StartResponse>))),
        ("POST", "/api/v1/pair/finish") => d("Pairing, step two: confirm and register the device", Some(json::<FinishBody>), ("200", Some(json::<FinishResponse>))),
        ("POST", "/api/v1/admin/pairing-offers") => d("A one-time pairing offer with code and QR", Some(json::<OfferBody>), ("200", Some(json::<OfferView>))),
        _ => None,
    }
}

/// Whether `path` belongs to the API rather than to the pages.
fn is_api(path: &str) -> bool {
    ["/api/", "/media/", "/hls/"].iter().any(|prefix| path.starts_with(prefix))
}

/// Builds the document. Panics when an API route has no description,
/// which the tests catch.
pub fn document() -> OpenApi {
    let mut schemas: Schemas = Vec::new();
    let mut paths = Paths::new();
    for route in routes::table() {
        if !is_api(route.path) {
            continue;
        }
        let method = route.method.as_str();
        let Some(described) = describe(method, route.path) else {
            panic!("{method} {} has no OpenAPI description: add it to openapi::describe", route.path);
        };
        let mut operation = OperationBuilder::new()
            .operation_id(Some(operation_id(method, route.path)))
            .summary(Some(described.summary))
            .tag(tag(route.path));
        for name in route.path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')) {
            let name = name.trim_start_matches('*');
            let parameter = ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(String::schema()));
            operation = operation.parameter(parameter);
        }
        if let Some(request) = described.request {
            let (media, schema) = request(&mut schemas);
            let body = RequestBodyBuilder::new().content(media, ContentBuilder::new().schema(Some(schema)).build()).required(Some(Required::True));
            operation = operation.request_body(Some(body.build()));
        }
        operation = operation.responses(responses(&described, &mut schemas));
        for requirement in security(route.guard) {
            operation = operation.security(requirement);
        }
        let http = match method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "DELETE" => HttpMethod::Delete,
            other => panic!("method {other} is not in the document"),
        };
        paths.add_path_operation(route.path, vec![http], operation.build());
    }

    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "device_session",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Hearth-Session",
                "A session of a paired device. Every request also carries Hearth-Binding and Hearth-Proof: the device key's \
                 signature over method, target, time, nonce and the TLS connection's exporter value (docs/access.md).",
            ))),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Hearth")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("The HTTP API of a Hearth home media server. Generated from the route table; docs/api.md explains each route.")),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

/// Returns the document as pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

fn responses(described: &Described, schemas: &mut Schemas) -> Responses {
    let (status, body) = described.success;
    let mut success = ResponseBuilder::new().description(described.summary);
    if let Some(body) = body {
        let (media, schema) = body(schemas);
        success = success.content(media, ContentBuilder::new().schema(Some(schema)).build());
    }
    let error = || {
        let schema = ObjectBuilder::new().property("error", ObjectBuilder::new().schema_type(Type::String)).required("error").build();
        ResponseBuilder::new().content("application/json", ContentBuilder::new().schema(Some(Schema::Object(schema))).build())
    };
    ResponsesBuilder::new()
        .response(status, success.build())
        .response("400", error().description("A value is invalid; the message names it").build())
        .response("401", error().description("No valid session, proof or grant").build())
        .response("403", error().description("The policy denies the action").build())
        .response("404", error().description("Not found").build())
        .build()
}

/// The security requirement of a guard: none for public and grant routes.
fn security(guard: Guard) -> Vec<SecurityRequirement> {
    match guard {
        Guard::Public | Guard::Grant | Guard::LinkInvite => Vec::new(),
        Guard::Session(_) => vec![SecurityRequirement::new("device_session", Vec::<String>::new())],
    }
}

/// Names an operation by method and path: `get_api_v1_items_id`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect();
    format!("{}_{}", method.to_ascii_lowercase(), words.join("_"))
}

/// Groups operations by the path's first word after `/api/v1/admin/` or `/api/v1/`.
fn tag(path: &str) -> String {
    let rest = path.strip_prefix("/api/v1/admin/").or_else(|| path.strip_prefix("/api/v1/")).unwrap_or(path.trim_start_matches('/'));
    rest.split('/').next().unwrap_or("api").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_is_described() {
        let document = document();
        let json = serde_json::to_value(&document).unwrap();
        let listed: usize = json["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
        let api_routes = routes::table().into_iter().filter(|route| is_api(route.path)).count();
        assert_eq!(listed, api_routes);
        assert!(json["components"]["schemas"]["ItemSummary"].is_object());
        assert!(json["components"]["schemas"]["PlaybackAnswer"].is_object());
    }

    #[test]
    fn committed_document_is_current() {
        let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap_or_default();
        assert!(
            committed == document_json(),
            "docs/openapi.json is stale: run `cargo run -p hearth-server --example openapi > docs/openapi.json`, then `npm run api --prefix ui`"
        );
    }
}
