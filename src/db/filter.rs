//! The running operations filter, kept per administrator
//! (`billmgrops_filter`, keyed by AUTH_USER) and turned into a WHERE clause
//! with bound values: filter text is data, never SQL.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Value;

use super::{cell_text, Db};

/// One administrator's filter; `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationFilter {
    /// wait, run, error or stopped.
    pub status: Option<String>,
    /// The operation type.
    pub intname: Option<String>,
    /// An account id (all digits) or a part of the client's name.
    pub client: Option<String>,
    pub item: Option<u64>,
    pub itemtype: Option<u64>,
    pub processingmodule: Option<u64>,
    /// `YYYY-MM-DD`, inclusive.
    pub cdate_from: Option<String>,
    /// `YYYY-MM-DD`, inclusive.
    pub cdate_to: Option<String>,
    /// on or off.
    pub manual: Option<String>,
}

impl OperationFilter {
    pub fn is_empty(&self) -> bool {
        *self == OperationFilter::default()
    }

    /// ` WHERE ...` (empty when nothing is filtered) and its values, for a
    /// query over `runningoperation ro` joined as in `operations`.
    pub fn where_clause(&self) -> (String, Vec<Value>) {
        let mut terms = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(v) = &self.status {
            terms.push("COALESCE(s.status, ?) = ?");
            values.push(crate::operation::State::Wait.as_str().into());
            values.push(v.clone().into());
        }
        if let Some(v) = &self.intname {
            terms.push("ro.intname = ?");
            values.push(v.clone().into());
        }
        if let Some(v) = &self.client {
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                terms.push("i.account = ?");
            } else {
                terms.push("a.name LIKE CONCAT('%', ?, '%')");
            }
            values.push(escape_like(v).into());
        }
        if let Some(v) = self.item {
            terms.push("ro.item = ?");
            values.push(v.into());
        }
        if let Some(v) = self.itemtype {
            terms.push("p.itemtype = ?");
            values.push(v.into());
        }
        if let Some(v) = self.processingmodule {
            terms.push("COALESCE(ro.processingmodule, i.processingmodule) = ?");
            values.push(v.into());
        }
        if let Some(v) = &self.cdate_from {
            terms.push("ro.cdate >= ?");
            values.push(v.clone().into());
        }
        if let Some(v) = &self.cdate_to {
            terms.push("ro.cdate < ? + INTERVAL 1 DAY");
            values.push(v.clone().into());
        }
        if let Some(v) = &self.manual {
            terms.push("ro.manual = ?");
            values.push(v.clone().into());
        }
        if terms.is_empty() {
            (String::new(), values)
        } else {
            (format!(" WHERE {}", terms.join(" AND ")), values)
        }
    }
}

/// `%` and `_` in a LIKE pattern are literal characters of the filter.
pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The filter of `user` (empty when none is saved).
pub fn load(db: &mut Db, user: &str) -> Result<OperationFilter> {
    let row: Option<mysql::Row> = db
        .conn()
        .exec_first(
            "SELECT status, intname, client, item, itemtype, processingmodule,
                    cdate_from, cdate_to, manual
             FROM billmgrops_filter WHERE user = ?",
            (user,),
        )
        .with_context(|| format!("failed to read the filter of `{user}`"))?;
    let Some(r) = row else {
        return Ok(OperationFilter::default());
    };
    let text = |i| Some(cell_text(&r, i)).filter(|s| !s.is_empty());
    let id = |i| cell_text(&r, i).parse::<u64>().ok();
    let date = |i: usize| text(i).map(|d: String| d.chars().take(10).collect());
    Ok(OperationFilter {
        status: text(0),
        intname: text(1),
        client: text(2),
        item: id(3),
        itemtype: id(4),
        processingmodule: id(5),
        cdate_from: date(6),
        cdate_to: date(7),
        manual: text(8),
    })
}

/// Saves (or, for an empty filter, removes) the filter of `user`.
pub fn save(db: &mut Db, user: &str, f: &OperationFilter) -> Result<()> {
    if f.is_empty() {
        db.conn()
            .exec_drop("DELETE FROM billmgrops_filter WHERE user = ?", (user,))
            .with_context(|| format!("failed to reset the filter of `{user}`"))?;
        return Ok(());
    }
    db.conn()
        .exec_drop(
            "REPLACE INTO billmgrops_filter
                (user, status, intname, client, item, itemtype, processingmodule, cdate_from, cdate_to, manual)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user,
                &f.status,
                &f.intname,
                &f.client,
                f.item,
                f.itemtype,
                f.processingmodule,
                &f.cdate_from,
                &f.cdate_to,
                &f.manual,
            ),
        )
        .with_context(|| format!("failed to save the filter of `{user}`"))?;
    Ok(())
}
