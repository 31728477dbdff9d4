//! What the body of a statement from a copy may hold: one statement,
//! nothing that reaches outside the restored database or into the
//! server, its files or its accounts, and only engines that keep data
//! inside the server (the lists below).

use super::lex::{Kind, Token};
use super::{refused, DdlError, Scope};
use crate::db::TABLE_PREFIX;

/// Storage engines a restored table may use: those that keep their data
/// inside the server's own files.
pub const ENGINES: &[&str] = &[
    "innodb",
    "myisam",
    "aria",
    "memory",
    "heap",
    "archive",
    "csv",
    "blackhole",
    "rocksdb",
    "sequence",
];

/// Words a definition from a copy never holds (outside quotes).
const DENIED_WORDS: &[&str] = &[
    "grant",
    "revoke",
    "install",
    "uninstall",
    "shutdown",
    "kill",
    "prepare",
    "execute",
    "deallocate",
    "outfile",
    "dumpfile",
    "load_file",
    "flush",
    "purge",
    "binlog",
    "reset",
    "soname",
    "directory",
    "connection",
    "global",
    "persist",
    "persist_only",
    "sql_log_bin",
    "delimiter",
];

/// Pairs of words a definition from a copy never holds.
const DENIED_PAIRS: &[(&str, &str)] = &[
    ("set", "password"),
    ("change", "master"),
    ("change", "replication"),
    ("start", "slave"),
    ("stop", "slave"),
    ("start", "replica"),
    ("stop", "replica"),
    ("start", "all"),
    ("stop", "all"),
];

/// `CREATE`/`ALTER`/`DROP`/`RENAME` of these is refused.
const DENIED_OBJECTS: &[&str] = &[
    "user",
    "role",
    "database",
    "schema",
    "server",
    "tablespace",
    "logfile",
];

/// The index of the `)` closing the `(` at `t[0]`.
pub(super) fn matching_paren(t: &[Token]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, tok) in t.iter().enumerate() {
        if tok.is_punct('(') {
            depth += 1;
        } else if tok.is_punct(')') {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The checks every statement's body passes (see the module's doc).
pub(super) fn check_body(
    scope: &Scope,
    t: &[Token],
    what: &dyn Fn() -> String,
) -> Result<(), DdlError> {
    let fail = |why: String| Err(refused(format!("{}: {why}", what())));
    for (i, tok) in t.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| t.get(p));
        let next = t.get(i + 1);
        if tok.is_name() && tok.value.to_lowercase().starts_with(TABLE_PREFIX) {
            return fail(format!("it names the plugin's own table `{}`", tok.value));
        }
        // The first part of a dotted name: a database when it names one.
        if tok.is_name()
            && next.is_some_and(|n| n.is_punct('.'))
            && !prev.is_some_and(|p| p.is_punct('.'))
        {
            let lower = tok.value.to_lowercase();
            let three_part = t.get(i + 3).is_some_and(|p| p.is_punct('.'));
            if scope.foreign.contains(&lower) || (three_part && !scope.is_live(&tok.value)) {
                return fail(format!("it reaches into database `{}`", tok.value));
            }
        }
        match tok.kind {
            Kind::Word => {
                let lower = tok.value.to_lowercase();
                if DENIED_WORDS.contains(&lower.as_str()) {
                    return fail(format!(
                        "`{}` is not allowed in a copy",
                        tok.value.to_uppercase()
                    ));
                }
                if let Some(n) = next.filter(|n| n.kind == Kind::Word) {
                    if DENIED_PAIRS
                        .iter()
                        .any(|(a, b)| lower == *a && n.is_word(b))
                    {
                        return fail(format!(
                            "`{} {}` is not allowed in a copy",
                            tok.value.to_uppercase(),
                            n.value.to_uppercase()
                        ));
                    }
                }
                if lower == "definer" && next.is_some_and(|n| n.is_punct('=')) {
                    return fail("a second DEFINER".into());
                }
                if matches!(lower.as_str(), "create" | "alter" | "drop" | "rename") {
                    if let Some(object) = next.filter(|n| n.kind == Kind::Word) {
                        let object = object.value.to_lowercase();
                        if DENIED_OBJECTS.contains(&object.as_str()) {
                            return fail(format!(
                                "`{} {}` is not allowed in a copy",
                                lower.to_uppercase(),
                                object.to_uppercase()
                            ));
                        }
                    }
                }
                if lower == "load" && next.is_some_and(|n| n.kind == Kind::Word) {
                    return fail("`LOAD` is not allowed in a copy".into());
                }
                if lower == "engine" {
                    let value = t[i + 1..]
                        .iter()
                        .find(|n| !n.is_punct('='))
                        .filter(|n| n.is_name() || n.kind == Kind::Str);
                    match value {
                        Some(v) if ENGINES.contains(&v.value.to_lowercase().as_str()) => {}
                        Some(v) => {
                            return fail(format!("storage engine `{}` is not allowed", v.value))
                        }
                        None => return fail("a malformed ENGINE".into()),
                    }
                }
                if next.is_some_and(|n| n.is_punct('(')) && scope.udfs.contains(&lower) {
                    return fail(format!("it calls the server's function `{}`", tok.value));
                }
            }
            Kind::SysVar => {
                let scope_part = tok.value.split('.').next().unwrap_or("");
                if tok.value.contains('.') && scope_part != "session" && scope_part != "local" {
                    return fail(format!("`@@{}` is not allowed in a copy", tok.value));
                }
                if tok.value.ends_with("sql_log_bin") {
                    return fail("`@@sql_log_bin` is not allowed in a copy".into());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a `;` that ends the statement before its end: one inside a
/// compound statement's body (`BEGIN ... END`, `IF ... END IF`, loops,
/// `CASE`) is part of it.
pub(super) fn check_one_statement(t: &[Token], what: &dyn Fn() -> String) -> Result<(), DdlError> {
    let mut depth = 0usize;
    for (i, tok) in t.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| t.get(p));
        let next = t.get(i + 1);
        let after_end = prev.is_some_and(|p| p.is_word("END"));
        let statement_start = prev.is_none_or(|p| {
            p.is_punct(';')
                || p.is_punct(':')
                || ["BEGIN", "THEN", "ELSE", "DO", "LOOP", "REPEAT"]
                    .iter()
                    .any(|w| p.is_word(w))
        });
        if tok.kind == Kind::Word && !after_end {
            let opens = if tok.is_word("BEGIN") {
                !next.is_some_and(|n| n.is_word("WORK"))
            } else if tok.is_word("CASE") || tok.is_word("LOOP") || tok.is_word("WHILE") {
                true
            } else if tok.is_word("REPEAT") {
                !next.is_some_and(|n| n.is_punct('('))
            } else if tok.is_word("IF") || tok.is_word("FOR") {
                statement_start
            } else {
                false
            };
            if opens {
                depth += 1;
            } else if tok.is_word("END") {
                depth = depth.saturating_sub(1);
            }
        }
        if tok.is_punct(';') && depth == 0 && i + 1 != t.len() {
            return Err(refused(format!("{} holds more than one statement", what())));
        }
    }
    Ok(())
}
