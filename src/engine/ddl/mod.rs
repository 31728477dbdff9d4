//! Definitions read from a copy, checked and rebuilt before they run.
//!
//! A copy is data, never instructions: its listing carries the `CREATE`
//! statements of its tables, views, triggers, routines and events, and a
//! forged or tampered copy can carry anything there. Before a restore runs
//! one, it is lexed ([`lex`]) and checked against what such a statement
//! may be, and the statement that runs is rebuilt from the checked parts:
//!
//! - the shape: `CREATE TABLE <name> (...) <options>` for a table; for the
//!   others `CREATE [ALGORITHM=..] [DEFINER=..] [SQL SECURITY ..] <kind>
//!   <name> ...`, of the kind and name the listing says (a trigger on a
//!   table of the copy). The head is written anew from the parsed parts
//!   with quoted names; only the rest is taken from the copy, as checked.
//! - one statement: no `;` outside a compound statement's body (and the
//!   restore prepares the statement, so the server itself refuses a second
//!   one);
//! - nothing outside the one database being restored: no name qualified by
//!   another database on the server, a system schema or the copy's source
//!   database when that is not the live one; no name of the plugin's own
//!   tables (`billmgrops_*`), which live in the same database;
//! - nothing that reaches the server, its files or its accounts: no
//!   dynamic SQL (`PREPARE`, `EXECUTE`), no `GRANT`/`REVOKE`, no account,
//!   database, server or tablespace DDL, no `INTO OUTFILE`/`DUMPFILE`,
//!   `LOAD DATA`/`LOAD XML`, `LOAD_FILE()`, no global or persisted
//!   variables, no `sql_log_bin`, no plugins or `SONAME`, no replication
//!   or `FLUSH`/`RESET`/`PURGE`/`KILL`/`SHUTDOWN`, no user-defined (UDF)
//!   function of the server, no `DATA`/`INDEX DIRECTORY`, no `CONNECTION`,
//!   only storage engines that keep data inside the server
//!   ([`body::ENGINES`]);
//! - for a table: no `SELECT`, `LIKE` or `UNION`, and foreign keys that
//!   reference tables of the same database.
//!
//! Anything else is refused with a [`DdlError`] naming the definition and
//! what was found, and the restore stops before it changes anything.

mod body;
mod collation;
mod foreign;
pub mod lex;

use std::collections::HashSet;

use super::format::DefinitionKind;
use body::{check_body, check_one_statement, matching_paren};
pub use foreign::{split_foreign_keys, ForeignKey};
use lex::{Kind, Mode, Token};

use crate::db::{quote_ident, TABLE_PREFIX};

/// Why a definition from a copy was refused. Callers branch on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DdlError {
    /// Not lexically valid SQL (unterminated quote or comment, NUL).
    #[error("malformed SQL: {0}")]
    Syntax(String),
    /// Valid SQL that a copy may not carry.
    #[error("{0}")]
    Refused(String),
}

fn refused(what: impl Into<String>) -> DdlError {
    DdlError::Refused(what.into())
}

/// Schemas no copy may reach, whatever the server holds.
const SYSTEM_SCHEMAS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// What a restore into one database may name: read from the server once.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// The database being restored.
    pub live: String,
    /// Lower-case names of every other schema (and the system ones): a
    /// qualifier naming one of them is refused.
    pub foreign: HashSet<String>,
    /// Lower-case names of the server's user-defined (UDF) functions.
    pub udfs: HashSet<String>,
    /// The copy's tables (a trigger must be on one of them).
    pub tables: HashSet<String>,
    /// Lower-case names of the target server's collations, when read: a
    /// collation of the copy it lacks is replaced by the nearest it has
    /// ([`collation::nearest`]).
    pub collations: Option<HashSet<String>>,
}

impl Scope {
    /// A scope for restoring into `live`, with the server's other schemas
    /// and functions; `source` is the database the copy was taken from.
    pub fn new(
        live: &str,
        source: &str,
        schemas: impl IntoIterator<Item = String>,
        udfs: impl IntoIterator<Item = String>,
        tables: impl IntoIterator<Item = String>,
    ) -> Scope {
        let live_lower = live.to_lowercase();
        let mut foreign: HashSet<String> = schemas
            .into_iter()
            .map(|s| s.to_lowercase())
            .chain(SYSTEM_SCHEMAS.iter().map(|s| s.to_string()))
            .collect();
        if !source.is_empty() {
            foreign.insert(source.to_lowercase());
        }
        foreign.remove(&live_lower);
        Scope {
            live: live.to_string(),
            foreign,
            udfs: udfs.into_iter().map(|u| u.to_lowercase()).collect(),
            tables: tables.into_iter().collect(),
            collations: None,
        }
    }

    /// Reads the server's schemas and UDFs for a restore into `live`.
    pub fn read(
        conn: &mut mysql::Conn,
        live: &str,
        source: &str,
        tables: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<Scope> {
        use mysql::prelude::Queryable;
        let schemas: Vec<String> =
            conn.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")?;
        // mysql.func may be unreadable to a plain user; then no UDF is
        // callable by that user's definitions either.
        let udfs: Vec<String> = conn
            .query("SELECT name FROM mysql.func")
            .unwrap_or_default();
        let collations: Vec<String> =
            conn.query("SELECT COLLATION_NAME FROM information_schema.COLLATIONS")?;
        let mut scope = Scope::new(live, source, schemas, udfs, tables);
        scope.collations = Some(collations.into_iter().map(|c| c.to_lowercase()).collect());
        Ok(scope)
    }

    /// Is `qualifier` (the first part of a dotted name) this database?
    fn is_live(&self, qualifier: &str) -> bool {
        qualifier.eq_ignore_ascii_case(&self.live)
    }
}

/// Lexes `sql` under `sql_mode`.
fn tokens(sql: &str, sql_mode: &str) -> Result<Vec<Token>, DdlError> {
    lex::lex(sql, Mode::from_sql_mode(sql_mode))
}

/// A checked `CREATE TABLE` for table `name`, rebuilt.
pub fn table(scope: &Scope, create: &str, name: &str) -> Result<String, DdlError> {
    let what = || format!("the definition of table `{name}`");
    let t = tokens(create, "").map_err(|e| refused(format!("{}: {e}", what())))?;
    let mut at = 0;
    expect_word(&t, &mut at, "CREATE", &what)?;
    expect_word(&t, &mut at, "TABLE", &what)?;
    let (found, name_token) = object_name(scope, &t, &mut at, &what)?;
    if found != name {
        return Err(refused(format!(
            "{} creates `{found}`, not `{name}`",
            what()
        )));
    }
    let open = t.get(at).filter(|tok| tok.is_punct('('));
    let Some(open) = open else {
        return Err(refused(format!(
            "{} is not `CREATE TABLE name (columns ...)`",
            what()
        )));
    };
    let body = &t[at..];
    let close = matching_paren(body)
        .ok_or_else(|| refused(format!("{}: unbalanced parentheses", what())))?;
    for tok in &body[close + 1..] {
        for word in ["select", "like", "union", "as", "ignore", "replace"] {
            if tok.is_word(word) {
                return Err(refused(format!(
                    "{}: `{}` in its table options",
                    what(),
                    word.to_uppercase()
                )));
            }
        }
    }
    if body.iter().any(|tok| tok.is_punct(';')) {
        return Err(refused(format!("{} holds more than one statement", what())));
    }
    for (i, tok) in body.iter().enumerate() {
        if tok.is_word("select") {
            return Err(refused(format!("{}: a SELECT inside it", what())));
        }
        if tok.is_word("references") {
            let target = body.get(i + 1);
            if target.is_none_or(|n| !n.is_name())
                || body.get(i + 2).is_some_and(|n| n.is_punct('.'))
            {
                return Err(refused(format!(
                    "{}: a foreign key to a table of another database",
                    what()
                )));
            }
        }
    }
    check_body(scope, body, &what)?;
    let end = body.last().map_or(open.end, |l| l.end);
    Ok(format!(
        "CREATE TABLE {} {}",
        &create[name_token.start..name_token.end],
        with_known_collations(scope, create, body, open.start, end, name)
    ))
}

/// `create[from..to]` with every collation the target lacks (the word
/// after `COLLATE`, with or without `=`) replaced by the nearest it has;
/// each replacement is logged.
fn with_known_collations(
    scope: &Scope,
    create: &str,
    body: &[Token],
    from: usize,
    to: usize,
    table: &str,
) -> String {
    let Some(known) = &scope.collations else {
        return create[from..to].to_string();
    };
    let mut out = String::with_capacity(to - from);
    let mut copied = from;
    for (i, tok) in body.iter().enumerate() {
        if !tok.is_word("COLLATE") {
            continue;
        }
        let mut j = i + 1;
        if body.get(j).is_some_and(|t| t.is_punct('=')) {
            j += 1;
        }
        let Some(name) = body.get(j).filter(|t| t.kind == Kind::Word) else {
            continue;
        };
        if let Some(nearest) = collation::nearest(&name.value, known) {
            log::warn!(
                "table `{table}`: collation {} is not on this server; restored as {nearest}",
                name.value
            );
            out.push_str(&create[copied..name.start]);
            out.push_str(&nearest);
            copied = name.end;
        }
    }
    out.push_str(&create[copied..to]);
    out
}

/// Runs one checked statement as a prepared statement, so that the server
/// refuses anything after its end. MySQL cannot prepare some kinds of
/// `CREATE` (error 1295): those run as they are, having passed the same
/// checks.
pub fn run_checked(c: &mut mysql::Conn, sql: &str) -> anyhow::Result<()> {
    use mysql::prelude::Queryable;
    match c.exec_drop(sql, ()) {
        Err(mysql::Error::MySqlError(e)) if e.code == 1295 => c.query_drop(sql).map_err(Into::into),
        other => other.map_err(Into::into),
    }
}

/// A view, trigger, routine or event as the listing describes it.
pub struct Object<'a> {
    pub kind: DefinitionKind,
    pub name: &'a str,
    /// The table of a trigger.
    pub table: &'a str,
    pub create: &'a str,
    pub sql_mode: &'a str,
    /// Replaces the definer the statement names (`CURRENT_USER`: the
    /// account that runs it).
    pub definer: Option<&'a str>,
}

/// Checks a sql_mode from a copy: comma-separated words, nothing else.
pub fn sql_mode(mode: &str) -> Result<&str, DdlError> {
    if super::format::check::is_sql_mode(mode) {
        Ok(mode)
    } else {
        Err(refused(format!("`{mode}` is not a sql_mode")))
    }
}

/// A checked `CREATE` of a view, trigger, routine or event, rebuilt with
/// its head written anew.
pub fn definition(scope: &Scope, o: &Object<'_>) -> Result<String, DdlError> {
    let what = || format!("the definition of {} `{}`", o.kind.as_str(), o.name);
    sql_mode(o.sql_mode)?;
    let t = tokens(o.create, o.sql_mode).map_err(|e| refused(format!("{}: {e}", what())))?;
    let mut at = 0;
    expect_word(&t, &mut at, "CREATE", &what)?;
    if t.get(at).is_some_and(|w| w.is_word("OR")) {
        at += 1;
        expect_word(&t, &mut at, "REPLACE", &what)?;
    }
    let mut head = String::from("CREATE");
    if o.kind == DefinitionKind::View && t.get(at).is_some_and(|w| w.is_word("ALGORITHM")) {
        at += 1;
        expect_punct(&t, &mut at, '=', &what)?;
        let algorithm = one_of(&t, &mut at, &["UNDEFINED", "MERGE", "TEMPTABLE"], &what)?;
        head.push_str(&format!(" ALGORITHM={algorithm}"));
    }
    if t.get(at).is_some_and(|w| w.is_word("DEFINER")) {
        at += 1;
        expect_punct(&t, &mut at, '=', &what)?;
        let written = definer(&t, &mut at, &what)?;
        head.push_str(&format!(" DEFINER={}", o.definer.unwrap_or(&written)));
    } else if let Some(d) = o.definer {
        head.push_str(&format!(" DEFINER={d}"));
    }
    if o.kind == DefinitionKind::View && t.get(at).is_some_and(|w| w.is_word("SQL")) {
        at += 1;
        expect_word(&t, &mut at, "SECURITY", &what)?;
        let security = one_of(&t, &mut at, &["DEFINER", "INVOKER"], &what)?;
        head.push_str(&format!(" SQL SECURITY {security}"));
    }
    if o.kind == DefinitionKind::Function && t.get(at).is_some_and(|w| w.is_word("AGGREGATE")) {
        at += 1;
        head.push_str(" AGGREGATE");
    }
    expect_word(&t, &mut at, o.kind.keyword(), &what)?;
    head.push(' ');
    head.push_str(o.kind.keyword());
    let (found, name_token) = object_name(scope, &t, &mut at, &what)?;
    if found != o.name {
        return Err(refused(format!("{} creates `{found}`", what())));
    }
    head.push(' ');
    head.push_str(&o.create[name_token.start..name_token.end]);
    let mut rest_from = name_token.end;
    if o.kind == DefinitionKind::Trigger {
        let timing_at = at;
        one_of(&t, &mut at, &["BEFORE", "AFTER"], &what)?;
        one_of(&t, &mut at, &["INSERT", "UPDATE", "DELETE"], &what)?;
        expect_word(&t, &mut at, "ON", &what)?;
        let (table, table_token) = object_name(scope, &t, &mut at, &what)?;
        if table != o.table || !scope.tables.contains(&table) {
            return Err(refused(format!(
                "{} is on `{table}`, which is not a table of the copy",
                what()
            )));
        }
        // Timing, event and table as written (the server keeps the text).
        let written = |i: usize| &o.create[t[i].start..t[i].end];
        head.push_str(&format!(
            " {} {} {} {}",
            written(timing_at),
            written(timing_at + 1),
            written(timing_at + 2),
            &o.create[table_token.start..table_token.end]
        ));
        rest_from = table_token.end;
    }
    let body = &t[at..];
    check_body(scope, body, &what)?;
    check_one_statement(body, &what)?;
    let end = t.last().map_or(rest_from, |l| l.end);
    let rest = o.create[rest_from..end].trim_end();
    let rest = rest.strip_suffix(';').unwrap_or(rest);
    Ok(format!("{head}{rest}"))
}

fn expect_word(
    t: &[Token],
    at: &mut usize,
    word: &str,
    what: &dyn Fn() -> String,
) -> Result<(), DdlError> {
    match t.get(*at) {
        Some(tok) if tok.is_word(word) => {
            *at += 1;
            Ok(())
        }
        other => Err(refused(format!(
            "{}: `{word}` expected, found {}",
            what(),
            describe(other)
        ))),
    }
}

fn expect_punct(
    t: &[Token],
    at: &mut usize,
    c: char,
    what: &dyn Fn() -> String,
) -> Result<(), DdlError> {
    match t.get(*at) {
        Some(tok) if tok.is_punct(c) => {
            *at += 1;
            Ok(())
        }
        other => Err(refused(format!(
            "{}: `{c}` expected, found {}",
            what(),
            describe(other)
        ))),
    }
}

fn one_of(
    t: &[Token],
    at: &mut usize,
    words: &[&'static str],
    what: &dyn Fn() -> String,
) -> Result<&'static str, DdlError> {
    let tok = t.get(*at);
    match words.iter().find(|w| tok.is_some_and(|tok| tok.is_word(w))) {
        Some(w) => {
            *at += 1;
            Ok(w)
        }
        None => Err(refused(format!(
            "{}: one of {} expected, found {}",
            what(),
            words.join(", "),
            describe(tok)
        ))),
    }
}

fn describe(tok: Option<&Token>) -> String {
    match tok {
        None => "the end".into(),
        Some(t) => format!("`{}`", t.value.chars().take(40).collect::<String>()),
    }
}

/// `user@host` (quoted or not) or `CURRENT_USER[()]`, quoted anew.
fn definer(t: &[Token], at: &mut usize, what: &dyn Fn() -> String) -> Result<String, DdlError> {
    let part = |tok: Option<&Token>| -> Option<String> {
        let tok = tok?;
        matches!(tok.kind, Kind::Word | Kind::Quoted | Kind::Str).then(|| tok.value.clone())
    };
    if t.get(*at).is_some_and(|w| w.is_word("CURRENT_USER")) {
        *at += 1;
        if t.get(*at).is_some_and(|p| p.is_punct('('))
            && t.get(*at + 1).is_some_and(|p| p.is_punct(')'))
        {
            *at += 2;
        }
        return Ok("CURRENT_USER".into());
    }
    let user =
        part(t.get(*at)).ok_or_else(|| refused(format!("{}: a malformed DEFINER", what())))?;
    *at += 1;
    let host = match t.get(*at) {
        Some(v) if v.kind == Kind::Var => {
            *at += 1;
            v.value.clone()
        }
        Some(p) if p.is_punct('@') => {
            *at += 1;
            let host = part(t.get(*at))
                .ok_or_else(|| refused(format!("{}: a malformed DEFINER", what())))?;
            *at += 1;
            host
        }
        // A role.
        _ => return Ok(quote_ident(&user)),
    };
    if user.len() > 128 || host.len() > 255 {
        return Err(refused(format!("{}: a malformed DEFINER", what())));
    }
    Ok(format!("{}@{}", quote_ident(&user), quote_ident(&host)))
}

/// An object's name, perhaps qualified by the live database (the
/// qualifier is dropped). Returns the name and its token (whose text,
/// checked to be a plain or quoted name, is kept as written).
fn object_name(
    scope: &Scope,
    t: &[Token],
    at: &mut usize,
    what: &dyn Fn() -> String,
) -> Result<(String, Token), DdlError> {
    let (name, token) = qualified_name(scope, t, at, what)?;
    if name.to_lowercase().starts_with(TABLE_PREFIX) {
        return Err(refused(format!(
            "{}: it names the plugin's own table `{name}`",
            what()
        )));
    }
    Ok((name, token))
}

fn qualified_name(
    scope: &Scope,
    t: &[Token],
    at: &mut usize,
    what: &dyn Fn() -> String,
) -> Result<(String, Token), DdlError> {
    if t.get(*at).is_some_and(|w| w.is_word("IF")) {
        *at += 1;
        expect_word(t, at, "NOT", what)?;
        expect_word(t, at, "EXISTS", what)?;
    }
    let first = t.get(*at).filter(|n| n.is_name()).ok_or_else(|| {
        refused(format!(
            "{}: a name expected, found {}",
            what(),
            describe(t.get(*at))
        ))
    })?;
    *at += 1;
    if t.get(*at).is_some_and(|p| p.is_punct('.')) {
        let second = t
            .get(*at + 1)
            .filter(|n| n.is_name())
            .ok_or_else(|| refused(format!("{}: a malformed name", what())))?;
        if !scope.is_live(&first.value) {
            return Err(refused(format!(
                "{}: `{}.{}` is in another database",
                what(),
                first.value,
                second.value
            )));
        }
        *at += 2;
        return Ok((second.value.clone(), second.clone()));
    }
    Ok((first.value.clone(), first.clone()))
}

#[cfg(test)]
mod tests;
