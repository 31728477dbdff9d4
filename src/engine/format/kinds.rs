//! The closed sets a copy names: the kinds of definitions, how the
//! snapshot was made consistent, encryption and compression, what a saved
//! path is, and the kinds of saved objects an administrator restores one
//! by one. Each is written under its name in the listing (serde names, so
//! the JSON is what it always was) and is read back refusing any other.

use serde::{Deserialize, Serialize};

use crate::db::quote_ident;

/// The kinds of definitions a database holds besides tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefinitionKind {
    #[default]
    View,
    Trigger,
    Procedure,
    Function,
    Event,
}

impl DefinitionKind {
    pub fn parse(kind: &str) -> Option<DefinitionKind> {
        Some(match kind {
            "view" => DefinitionKind::View,
            "trigger" => DefinitionKind::Trigger,
            "procedure" => DefinitionKind::Procedure,
            "function" => DefinitionKind::Function,
            "event" => DefinitionKind::Event,
            _ => return None,
        })
    }

    /// The name in a listing and in `schema/<kind>/` entries.
    pub fn as_str(self) -> &'static str {
        match self {
            DefinitionKind::View => "view",
            DefinitionKind::Trigger => "trigger",
            DefinitionKind::Procedure => "procedure",
            DefinitionKind::Function => "function",
            DefinitionKind::Event => "event",
        }
    }

    /// The keyword in `CREATE ... <KEYWORD> name`.
    pub fn keyword(self) -> &'static str {
        match self {
            DefinitionKind::View => "VIEW",
            DefinitionKind::Trigger => "TRIGGER",
            DefinitionKind::Procedure => "PROCEDURE",
            DefinitionKind::Function => "FUNCTION",
            DefinitionKind::Event => "EVENT",
        }
    }

    /// `DROP <KIND> IF EXISTS database.name`.
    pub fn drop_sql(self, database: &str, name: &str) -> String {
        format!(
            "DROP {} IF EXISTS {}.{}",
            self.keyword(),
            quote_ident(database),
            quote_ident(name)
        )
    }
}

impl std::fmt::Display for DefinitionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the workers' view of the database was made consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    #[default]
    /// Every worker's snapshot started under one brief commit lock.
    SharedSnapshot,
    /// Every worker's snapshot started while the database's tables were
    /// read-locked (`LOCK TABLES .. READ`: no RELOAD needed, only what
    /// `ALL` on the database gives, as mydumper's `--lock-all-tables`).
    TableLocks,
    /// One worker in its own snapshot (no lock could be had in time).
    SingleConnection,
}

impl Consistency {
    /// The name in the listing.
    pub const fn as_str(self) -> &'static str {
        match self {
            Consistency::SharedSnapshot => "shared-snapshot",
            Consistency::TableLocks => "table-locks",
            Consistency::SingleConnection => "single-connection",
        }
    }
}

/// How the archive and the listing are encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Encryption {
    /// Not encrypted (the listing leaves the field out).
    #[default]
    #[serde(rename = "")]
    None,
    /// [age](https://age-encryption.org/v1), with a key of the copy's own.
    #[serde(rename = "age")]
    Age,
}

impl Encryption {
    pub fn is_none(&self) -> bool {
        *self == Encryption::None
    }
}

/// How data chunks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
}

/// What a saved path is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    #[default]
    File,
    Dir,
    Symlink,
}

/// A kind of object kept in one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectKind {
    /// The kind's name in `backupdata` (`type`), and in the listing.
    pub kind: &'static str,
    pub table: &'static str,
    /// The integer key column.
    pub id: &'static str,
    /// The column that names an object for people.
    pub name: &'static str,
    /// The column holding the owning client (`account.id`), if any.
    pub owner: Option<&'static str>,
}

/// The table kinds, top-level first.
pub const TABLE_KINDS: &[ObjectKind] = &[
    ObjectKind {
        kind: "account",
        table: "account",
        id: "id",
        name: "name",
        owner: None,
    },
    ObjectKind {
        kind: "user",
        table: "user",
        id: "id",
        name: "name",
        owner: Some("account"),
    },
    ObjectKind {
        kind: "item",
        table: "item",
        id: "id",
        name: "name",
        owner: Some("account"),
    },
    ObjectKind {
        kind: "payment",
        table: "payment",
        id: "id",
        name: "number",
        owner: Some("account"),
    },
];

/// The saved files, by directory.
pub const FILES: &str = "files";
/// One saved file (listed within its directory, `backupdata.files`).
pub const FILE: &str = "file";

/// Every kind, in the order `backupdata` lists them.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    TABLE_KINDS
        .iter()
        .map(|k| k.kind)
        .chain(std::iter::once(FILES))
}

/// The kind kept in `table`, if any.
pub fn of_table(table: &str) -> Option<&'static ObjectKind> {
    TABLE_KINDS.iter().find(|k| k.table == table)
}

/// Where a kind's columns are in a table's column list.
#[derive(Clone, Copy, Debug)]
pub struct Positions {
    pub id: usize,
    pub name: usize,
    pub owner: Option<usize>,
}

impl ObjectKind {
    /// The positions of this kind's columns in `columns`, when all exist.
    pub fn positions(&self, columns: &[String]) -> Option<Positions> {
        let at = |c: &str| columns.iter().position(|x| x == c);
        Some(Positions {
            id: at(self.id)?,
            name: at(self.name)?,
            owner: match self.owner {
                Some(o) => Some(at(o)?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_defined_once() {
        let all: Vec<&str> = kinds().collect();
        assert_eq!(all, ["account", "user", "item", "payment", "files"]);
        assert_eq!(of_table("item").map(|k| k.name), Some("name"));
        assert!(of_table("itemparam").is_none());
        let columns: Vec<String> = ["id", "account", "number"].map(String::from).into();
        let p = of_table("payment").unwrap().positions(&columns).unwrap();
        assert_eq!((p.id, p.name, p.owner), (0, 2, Some(1)));
        assert!(of_table("account").unwrap().positions(&columns).is_none());
    }
}
