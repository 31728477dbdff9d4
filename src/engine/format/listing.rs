//! The listing: what a copy holds and where, as JSON.
//!
//! The same document is the last entry of the archive (`listing.json`) and
//! an object of its own beside the archive on the storage
//! (`<copy>.json`), so the list of copies, verification and per-object
//! restore can work from the small listing without reading the archive.
//! Every entry of the archive is named here with its data offset, size and
//! SHA-256; every data chunk also with the size of its uncompressed rows
//! and its row count (and, before version 3, their SHA-256). See
//! docs/archive-format.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::kinds::{Compression, Consistency, DefinitionKind, Encryption, FileKind};

/// The format name in every listing.
pub const FORMAT: &str = "billmgr-ops-copy";
/// The newest format version this build writes and reads. Readers accept
/// every older version; a change older readers cannot read gets a new one.
/// Version 2 added each chunk's frames and each table's key index (what
/// version 1 readers would ignore, but they would then read a one-row
/// lookup as a whole chunk and never know better). Version 3 dropped each
/// chunk's `text_sha256`: the entry's SHA-256 of the compressed frames
/// already fixes the text, and hashing every byte of text a second time
/// took 7 % of a dump's time (older readers require the field).
pub const VERSION: u32 = 3;

/// The whole listing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub format: String,
    pub version: u32,
    /// The copy's name (also the archive's file name without extension).
    pub name: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub created: String,
    /// The database the copy was taken from.
    pub database: String,
    pub server_version: String,
    pub consistency: Consistency,
    /// Compression of data chunks.
    pub compression: Compression,
    /// Encryption of the archive and this listing.
    #[serde(default, skip_serializing_if = "Encryption::is_none")]
    pub encryption: Encryption,
    pub tables: Vec<TableEntry>,
    /// Views, triggers, routines and events, in the order they are created.
    pub definitions: Vec<Definition>,
    pub files: Vec<FileEntry>,
    /// Set in the listing beside the archive only: the archive itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveSummary>,
    /// The database's default character set and collation (where they were
    /// read), for a database made anew from the copy by hand: its views'
    /// and routines' text compare by them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collation: Option<DatabaseCollation>,
    /// Where the copy stands in the server's binary log, when the server
    /// writes one: its snapshot holds every transaction logged before
    /// this position and none after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<LogPosition>,
    /// The entry `objects.tsv.zst`: the objects the copy holds (see
    /// `archive::objects`), one per line `kind, id, name, owner`; kept out
    /// of this JSON because a large billing database has millions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Entry>,
}

/// A database's default character set and collation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseCollation {
    pub charset: String,
    pub collation: String,
}

/// A place in a server's binary log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    /// The server's identity (`@@server_uuid`, or MariaDB's server id
    /// with its host name), as the follower names its segments.
    pub server: String,
    pub file: String,
    pub pos: u64,
    /// The server's GTID set at that point, where it was read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gtid: String,
}

impl LogPosition {
    /// As the catalog keeps it: `server|file|position`.
    pub fn catalog_text(&self) -> String {
        format!("{}|{}|{}", self.server, self.file, self.pos)
    }

    /// From the catalog's text; `None` for an empty or damaged one.
    pub fn from_catalog(text: &str) -> Option<LogPosition> {
        let mut parts = text.rsplitn(3, '|');
        let pos = parts.next()?.parse().ok()?;
        let file = parts.next()?.to_string();
        let server = parts.next()?.to_string();
        Some(LogPosition {
            server,
            file,
            pos,
            gtid: String::new(),
        })
    }
}

/// One object a copy holds (a line of the `objects.tsv.zst` entry:
/// `kind, id, name, owner`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedObject {
    /// The kind (`engine::saved::objects`): account, user, item, payment.
    pub kind: String,
    pub id: i64,
    pub name: String,
    /// The owning client's id.
    pub owner: Option<i64>,
}

/// One base table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    /// `SHOW CREATE TABLE` output.
    pub create: String,
    /// The entry `schema/tables/<name>.sql` holding `create`.
    pub schema_entry: Entry,
    /// The columns in the data, in order (generated columns excluded:
    /// the server computes them on load).
    pub columns: Vec<String>,
    pub generated: Vec<String>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKey>,
    pub rows: u64,
    pub chunks: Vec<Chunk>,
    /// The key index (version 2): for the single-column integer primary
    /// key and each single-column integer foreign key, the frames of the
    /// table's chunks that hold each value, in blocks sorted by value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, Vec<KeyBlock>>,
}

/// One block of a table's key index: the entry `keys/<table>/<column>/
/// <n>.tsv.zst`, lines `value, frame` (tab-separated, zstd) sorted by
/// value then frame, for the values `first..=last`; each line's value is
/// written as its difference from the line before (the first as it is). A frame is numbered
/// across the table's chunks in order, from 0. The ranges of blocks may
/// overlap: a reader reads every block whose range holds a value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBlock {
    pub first: i64,
    pub last: i64,
    pub entry: Entry,
}

/// A foreign key as the source database declared it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

/// Where an entry's data is inside the archive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's path in the tar.
    pub path: String,
    /// Byte offset of the entry's data in the (unencrypted) tar stream.
    pub offset: u64,
    pub size: u64,
    /// SHA-256 of the entry's data, hex.
    pub sha256: String,
}

/// A piece of a table's rows: a zstd frame of LOAD DATA text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub entry: Entry,
    pub rows: u64,
    /// Size of the uncompressed text.
    pub text_size: u64,
    /// SHA-256 of the uncompressed text: copies before version 3 only
    /// (empty after; the entry's SHA-256 covers the compressed frames).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text_sha256: String,
    /// Primary key of the first and last row, when the table has a
    /// single-column integer key (lets a reader skip chunks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_key: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_key: Option<i64>,
    /// The lowest and highest value in this chunk of each single-column
    /// integer foreign key (by column): which chunks can hold the rows of
    /// one client, one service ... without reading the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ranges: BTreeMap<String, [i64; 2]>,
    /// The compressed size of each zstd frame of the chunk, in order
    /// (version 2): frames are independent, end on rows, and carry a
    /// content checksum, so one frame can be read and checked alone.
    /// Empty when the chunk is one frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<u64>,
    /// The primary key of each frame's first row, when the table has a
    /// single-column integer key (version 2; as many as `frames`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_keys: Vec<i64>,
}

/// A view, trigger, routine or event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub kind: DefinitionKind,
    pub name: String,
    /// The table a trigger belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub table: String,
    /// The CREATE statement as the server shows it.
    pub create: String,
    /// The sql_mode it was created under (triggers, routines, events).
    #[serde(default)]
    pub sql_mode: String,
    pub entry: Entry,
}

/// A saved file, directory or symbolic link of the panel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The absolute path it was saved from.
    pub path: String,
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// The link target of a symlink.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// The entry (files: their content).
    pub entry: Entry,
}

/// The archive object, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveSummary {
    /// The object's name on the storage.
    pub object: String,
    pub size: u64,
    pub sha256: String,
}

impl Listing {
    /// Total rows over all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a listing always serializes");
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::BadListing;
    use super::*;

    /// Listings of every version, as copies carry them (version 3 is a
    /// copy's own, written before the listing's kinds became types, with
    /// tables and files left out; 2 and 1 are it with what those versions
    /// had), read and written back byte for byte: the types are the
    /// format, and the format did not move.
    #[test]
    fn listings_of_every_version_are_written_back_as_they_were() {
        let fixtures: [(&str, u32, Encryption, Consistency); 3] = [
            (
                include_str!("fixtures/listing-v1.json"),
                1,
                Encryption::None,
                Consistency::SingleConnection,
            ),
            (
                include_str!("fixtures/listing-v2.json"),
                2,
                Encryption::Age,
                Consistency::SharedSnapshot,
            ),
            (
                include_str!("fixtures/listing-v3.json"),
                3,
                Encryption::None,
                Consistency::SharedSnapshot,
            ),
        ];
        for (json, version, encryption, consistency) in fixtures {
            let l = Listing::from_json(json.as_bytes()).unwrap();
            assert_eq!(
                (l.version, l.encryption, l.consistency, l.compression),
                (version, encryption, consistency, Compression::Zstd)
            );
            let kinds: Vec<DefinitionKind> = l.definitions.iter().map(|d| d.kind).collect();
            assert_eq!(
                kinds,
                [
                    DefinitionKind::View,
                    DefinitionKind::Function,
                    DefinitionKind::Procedure,
                    DefinitionKind::Trigger
                ]
            );
            assert_eq!(l.files[0].kind, FileKind::Dir);
            assert_eq!(
                String::from_utf8(l.to_json()).unwrap(),
                json,
                "version {version}"
            );
        }
    }

    #[test]
    fn a_collation_or_a_log_place_that_is_not_a_plain_name_is_refused() {
        let v3 = include_str!("fixtures/listing-v3.json");
        let with = |extra: &str| {
            Listing::from_json(
                v3.replacen(
                    "\"compression\": \"zstd\"",
                    &format!("\"compression\": \"zstd\", {extra}"),
                    1,
                )
                .as_bytes(),
            )
        };
        let good = with(
            r#""collation": {"charset": "utf8mb4", "collation": "utf8mb4_unicode_ci"},
               "binlog": {"server": "mariadb-1-h", "file": "binlog.000007", "pos": 4}"#,
        )
        .unwrap();
        assert_eq!(good.binlog.unwrap().file, "binlog.000007");
        for evil in [
            r#""collation": {"charset": "utf8mb4", "collation": "x; DROP DATABASE y"}"#,
            r#""collation": {"charset": "", "collation": "utf8mb4_bin"}"#,
            r#""binlog": {"server": "s", "file": "../../etc/passwd", "pos": 4}"#,
        ] {
            assert!(with(evil).is_err(), "{evil}");
        }
    }

    #[test]
    fn a_kind_this_build_does_not_know_is_refused() {
        let v3 = include_str!("fixtures/listing-v3.json");
        for (from, to) in [
            ("\"kind\": \"view\"", "\"kind\": \"table\""),
            (
                "\"consistency\": \"shared-snapshot\"",
                "\"consistency\": \"none\"",
            ),
            ("\"compression\": \"zstd\"", "\"compression\": \"gzip\""),
            (
                "\"compression\": \"zstd\"",
                "\"compression\": \"zstd\", \"encryption\": \"rot13\"",
            ),
            ("\"kind\": \"dir\"", "\"kind\": \"fifo\""),
        ] {
            assert!(v3.contains(from), "{from}");
            let e = Listing::from_json(v3.replacen(from, to, 1).as_bytes()).unwrap_err();
            assert!(e.downcast_ref::<BadListing>().is_some(), "{to}: {e:#}");
        }
    }

    #[test]
    fn round_trip_and_version_check() {
        let l = Listing {
            format: FORMAT.into(),
            version: VERSION,
            name: "c".into(),
            created: "2026-12-01 00:00:00".into(),
            ..Listing::default()
        };
        assert_eq!(Listing::from_json(&l.to_json()).unwrap(), l);
        let newer = Listing {
            version: VERSION + 1,
            ..l.clone()
        };
        let e = Listing::from_json(&newer.to_json()).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
        assert!(Listing::from_json(b"{").is_err());
        let other = Listing {
            format: "x".into(),
            ..l
        };
        assert!(Listing::from_json(&other.to_json()).is_err());
    }

    #[test]
    fn chunks_carry_a_text_hash_before_version_3_only() {
        let chunk = Chunk {
            entry: Entry {
                path: "data/t/00000-0000.tsv.zst".into(),
                offset: 512,
                size: 10,
                sha256: "ab".repeat(32),
            },
            rows: 1,
            text_size: 4,
            ..Chunk::default()
        };
        let listing = |version: u32, text_sha256: &str| Listing {
            format: FORMAT.into(),
            version,
            name: "c".into(),
            created: "2026-12-01 00:00:00".into(),
            tables: vec![TableEntry {
                name: "t".into(),
                create: "CREATE TABLE `t` (`a` int)".into(),
                schema_entry: Entry {
                    path: "schema/tables/t.sql".into(),
                    offset: 0,
                    size: 10,
                    sha256: "cd".repeat(32),
                },
                columns: vec!["a".into()],
                rows: 1,
                chunks: vec![Chunk {
                    text_sha256: text_sha256.into(),
                    ..chunk.clone()
                }],
                ..TableEntry::default()
            }],
            ..Listing::default()
        };
        let read = |l: Listing| Listing::from_json(&l.to_json());
        read(listing(3, "")).expect("version 3 leaves it out");
        read(listing(3, &"ef".repeat(32))).expect("and may carry one");
        read(listing(2, &"ef".repeat(32))).expect("version 2 carries it");
        let e = read(listing(2, "")).unwrap_err();
        assert!(e.to_string().contains("impossible sizes"), "{e:#}");
        assert!(read(listing(3, "not hex")).is_err());
        assert!(!String::from_utf8(listing(3, "").to_json())
            .unwrap()
            .contains("text_sha256"));
    }
}
