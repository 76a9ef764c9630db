//! Prints the server's OpenAPI document, as docs/openapi.json holds it:
//! `cargo run -p hearth-server --example openapi > docs/openapi.json`.

fn main() {
    print!("{}", hearth_server::openapi::document_json());
}
