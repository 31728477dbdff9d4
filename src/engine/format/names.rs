//! The names a copy's objects have on a storage, and the archive's fixed
//! entries. A copy `<name>` is up to three objects: the archive, the
//! listing beside it, and (when encrypted) its key sealed to the
//! passphrase.

/// The first entry's path and content.
pub const FORMAT_ENTRY: &str = "FORMAT";
pub const LISTING_ENTRY: &str = "listing.json";

/// The archive object of copy `name` on a storage.
pub fn archive_object(name: &str, encrypted: bool) -> String {
    if encrypted {
        format!("{name}.tar.age")
    } else {
        format!("{name}.tar")
    }
}

/// The listing object beside it.
pub fn listing_object(name: &str, encrypted: bool) -> String {
    if encrypted {
        format!("{name}.json.age")
    } else {
        format!("{name}.json")
    }
}

/// The object holding a copy's key.
pub fn key_object(name: &str) -> String {
    format!("{name}.key.age")
}
