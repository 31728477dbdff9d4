//! A table's foreign keys apart from the rest of its definition.
//!
//! InnoDB names a foreign key once per database (and MySQL its check
//! constraints too), so a table staged beside the live one cannot carry
//! the live table's constraint names: a restore staged inside the billing
//! database creates its tables without their foreign keys and adds them
//! after the swap, when the replaced tables have given theirs up. With
//! `foreign_key_checks = 0` both are changes of metadata only.

use super::body::matching_paren;
use super::{refused, tokens, DdlError};
use crate::db::quote_ident;

/// One `[CONSTRAINT name] FOREIGN KEY (...) REFERENCES ...` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignKey {
    /// The constraint's name; empty where the clause names none (the
    /// server then makes one up).
    pub name: String,
    /// The clause as written in the definition.
    pub clause: String,
}

/// A `CREATE TABLE` without its foreign keys, named anew.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub create: String,
    pub foreign_keys: Vec<ForeignKey>,
}

/// Splits the foreign keys off `create` (a checked definition, or the
/// server's own `SHOW CREATE TABLE`) and names the table `name`.
pub fn split_foreign_keys(create: &str, name: &str) -> Result<Split, DdlError> {
    let t = tokens(create, "")?;
    let open = t
        .iter()
        .position(|tok| tok.is_punct('('))
        .ok_or_else(|| refused("a table definition without columns"))?;
    let close = open
        + matching_paren(&t[open..])
            .ok_or_else(|| refused("a table definition with unbalanced parentheses"))?;
    let mut kept: Vec<&str> = Vec::new();
    let mut foreign_keys = Vec::new();
    let mut item_start = open + 1;
    let mut depth = 0usize;
    for i in open + 1..=close {
        let tok = &t[i];
        if tok.is_punct('(') {
            depth += 1;
            continue;
        }
        if tok.is_punct(')') && depth > 0 {
            depth -= 1;
            continue;
        }
        if !(i == close || depth == 0 && tok.is_punct(',')) {
            continue;
        }
        let item = &t[item_start..i];
        item_start = i + 1;
        let (Some(first), Some(last)) = (item.first(), item.last()) else {
            return Err(refused("a table definition with an empty item"));
        };
        let text = &create[first.start..last.end];
        let constraint = first.is_word("CONSTRAINT");
        let keyword = if constraint && item.get(1).is_some_and(|n| !n.is_word("FOREIGN")) {
            item.get(2)
        } else if constraint {
            item.get(1)
        } else {
            Some(first)
        };
        if keyword.is_some_and(|k| k.is_word("FOREIGN")) {
            let name = match item.get(1) {
                Some(n) if constraint && !n.is_word("FOREIGN") => n.value.clone(),
                _ => String::new(),
            };
            foreign_keys.push(ForeignKey {
                name,
                clause: text.to_string(),
            });
        } else {
            kept.push(text);
        }
    }
    let options = &create[t[close].end..];
    Ok(Split {
        create: format!(
            "CREATE TABLE {} (\n  {}\n){options}",
            quote_ident(name),
            kept.join(",\n  ")
        ),
        foreign_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_come_apart_and_the_rest_stays_as_written() {
        let create = "CREATE TABLE `item` (\n  `id` int NOT NULL,\n  `account` int NOT NULL,\n  `note` varchar(9) DEFAULT 'a,(b)',\n  PRIMARY KEY (`id`),\n  KEY `item_ibfk_1` (`account`),\n  CONSTRAINT `item_ibfk_1` FOREIGN KEY (`account`) REFERENCES `account` (`id`) ON DELETE CASCADE,\n  CONSTRAINT `c` CHECK (`account` > 0),\n  FOREIGN KEY (`id`, `account`) REFERENCES `pair` (`a`, `b`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        let split = split_foreign_keys(create, "billmgrops_stage_1").unwrap();
        assert_eq!(
            split.create,
            "CREATE TABLE `billmgrops_stage_1` (\n  `id` int NOT NULL,\n  `account` int NOT NULL,\n  `note` varchar(9) DEFAULT 'a,(b)',\n  PRIMARY KEY (`id`),\n  KEY `item_ibfk_1` (`account`),\n  CONSTRAINT `c` CHECK (`account` > 0)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        assert_eq!(
            split.foreign_keys,
            vec![
                ForeignKey {
                    name: "item_ibfk_1".into(),
                    clause: "CONSTRAINT `item_ibfk_1` FOREIGN KEY (`account`) REFERENCES `account` (`id`) ON DELETE CASCADE".into()
                },
                ForeignKey {
                    name: String::new(),
                    clause: "FOREIGN KEY (`id`, `account`) REFERENCES `pair` (`a`, `b`)".into()
                },
            ]
        );
    }

    #[test]
    fn a_table_without_foreign_keys_is_only_renamed() {
        let split =
            split_foreign_keys("CREATE TABLE `t` (\n  `a` int\n)", "billmgrops_stage_0").unwrap();
        assert_eq!(
            split.create,
            "CREATE TABLE `billmgrops_stage_0` (\n  `a` int\n)"
        );
        assert!(split.foreign_keys.is_empty());
        assert!(split_foreign_keys("CREATE TABLE `t` (`a` int", "x").is_err());
        assert!(split_foreign_keys("CREATE TABLE `t` (`a` int,)", "x").is_err());
    }
}
