//! Opaque item ids.

/// Draws a new random item id: 16 random bytes as 32 lowercase hex digits. Ids
/// carry no path, order or count, so they reveal nothing about the library.
pub(crate) fn new_item_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Returns whether `id` has the shape of an item id. Anything else is
/// rejected before it reaches a query.
pub fn is_valid_item_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
