//! Forged copies: a real copy made by the binary, taken apart and laid
//! out again with its listing edited, so that it is still a consistent
//! archive (every entry where the listing says, every hash right) and
//! only the lie under test remains.

use billmgr_ops::test_support::{read_entries, ArchiveWriter, LISTING_ENTRY};
use serde_json::Value;

/// The entries of an archive, in order, except its listing; and the
/// listing as JSON.
pub struct Parts {
    pub entries: Vec<(String, Vec<u8>)>,
    pub listing: Value,
}

pub fn take_apart(tar: &[u8]) -> Parts {
    let mut entries = Vec::new();
    let mut listing = None;
    read_entries(tar, |e| {
        if e.path == LISTING_ENTRY {
            listing = Some(serde_json::from_slice(&e.data)?);
        } else {
            entries.push((e.path, e.data));
        }
        Ok(())
    })
    .expect("a copy made by the binary reads back");
    Parts {
        entries,
        listing: listing.expect("the copy has a listing"),
    }
}

/// Every JSON object below `v` that describes an entry.
fn entry_objects(v: &mut Value, visit: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
    match v {
        Value::Object(map) => {
            if map.contains_key("path") && map.contains_key("offset") && map.contains_key("sha256")
            {
                visit(map);
            }
            for (_, child) in map.iter_mut() {
                entry_objects(child, visit);
            }
        }
        Value::Array(items) => {
            for item in items {
                entry_objects(item, visit);
            }
        }
        _ => {}
    }
}

impl Parts {
    /// Lays the archive out again with the listing exactly as edited (the
    /// entries land where they were: same order, same sizes).
    pub fn build_as_edited(self) -> Vec<u8> {
        self.lay_out(false)
    }

    /// Lays the archive out again: every entry where the (edited) listing
    /// can find it, by path; the listing last.
    pub fn build(self) -> Vec<u8> {
        self.lay_out(true)
    }

    fn lay_out(mut self, fix: bool) -> Vec<u8> {
        let mut w = ArchiveWriter::new(Vec::new(), 1_700_000_000);
        let mut placed = std::collections::HashMap::new();
        for (path, data) in &self.entries {
            let e = w.append(path, data).unwrap();
            placed.insert(path.clone(), e);
        }
        entry_objects(&mut self.listing, &mut |map| {
            if !fix {
                return;
            }
            let path = map["path"].as_str().unwrap_or_default().to_string();
            if let Some(e) = placed.get(&path) {
                map.insert("offset".into(), e.offset.into());
                map.insert("size".into(), e.size.into());
                map.insert("sha256".into(), e.sha256.clone().into());
            }
        });
        w.append(
            LISTING_ENTRY,
            &serde_json::to_vec_pretty(&self.listing).unwrap(),
        )
        .unwrap();
        w.finish().unwrap().0
    }
}

/// The listing to put beside `tar` on a storage (what a storage that was
/// tampered with would hold): the inner one with its archive summary.
pub fn listing_beside(tar: &[u8], object: &str) -> Vec<u8> {
    use sha2::Digest;
    let mut listing = take_apart(tar).listing;
    listing["archive"] = serde_json::json!({
        "object": object,
        "size": tar.len(),
        "sha256": sha2::Sha256::digest(tar).iter().map(|b| format!("{b:02x}")).collect::<String>(),
    });
    serde_json::to_vec_pretty(&listing).unwrap()
}
