//! One panel request: the PARAM_* environment, AUTH_USER / AUTH_LEVEL and the
//! XML document on stdin, read into a typed [`Request`].
//!
//! # Format
//!
//! ```text
//! PARAM_func=runningoperation.delete   PARAM_elid=3, 7   PARAM_sok=ok
//! AUTH_USER=admin  AUTH_LEVEL=29  HTTP_COOKIE=billmgrses5=..; billmgrlang5=billmgr:ru
//!
//! <?xml version="1.0" encoding="UTF-8"?>
//! <doc lang="en" func="runningoperation.delete">
//!   <tparams><func>runningoperation.delete</func><elid>3, 7</elid></tparams>
//!   <metadata .../><messages .../>
//! </doc>
//! ```
//!
//! The function comes from `PARAM_func`, else `ACTION_NAME`, else the
//! document's `func`. A value present only under `tparams` counts as a
//! parameter. The stdin document may be empty. Handlers read parameters only
//! through the typed accessors below, each of which fails with a
//! [`PanelError`] naming the parameter; an expected absence (no `sok`, an
//! empty `elid` meaning "new") is a value, not an error.

use std::collections::BTreeMap;

use super::error::{ErrorKind, PanelError};
use super::messages::Lang;
use crate::xml::Element;

/// The largest stdin document accepted.
pub const MAX_STDIN: usize = 16 * 1024 * 1024;
/// The longest value accepted for any single parameter.
pub const MAX_VALUE: usize = 64 * 1024;
/// The largest page a list returns.
pub const MAX_PAGE: u64 = 10_000;
/// The page size when the request names none.
pub const DEFAULT_PAGE: u64 = 100;
/// The most rows a list gives the panel when the panel pages (the total is
/// in `p_elems` all the same; a search narrows a longer list).
pub const PANEL_ROWS: u64 = 10_000;

/// What the call asks of a form or list function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No `sok`: show the form or list.
    View,
    /// `sv_field` without `sok`: a field marked setvalues changed.
    SetValues,
    /// `sok` non-empty and `elid` empty: create a new object.
    SubmitNew,
    /// `sok` non-empty and `elid` set: save an existing object.
    SubmitEdit,
}

/// The raw material of a call, as the process received it.
#[derive(Clone, Debug, Default)]
pub struct Incoming {
    /// The process environment (or the equivalent built by `billmgr-ops call`).
    pub env: BTreeMap<String, String>,
    /// The bytes on stdin.
    pub stdin: Vec<u8>,
    /// Lists answer with every row (up to [`PANEL_ROWS`]) and the caller
    /// pages them: the panel does, for an addon's list (see
    /// docs/real-panel-checks.md). `billmgr-ops call` pages here.
    pub whole_lists: bool,
}

impl Incoming {
    /// The language as far as the environment alone tells it (PARAM_lang,
    /// then the billmgrlang5 cookie), for errors raised before the document
    /// is read.
    pub fn lang_hint(env: &BTreeMap<String, String>) -> Lang {
        env.get("PARAM_lang")
            .and_then(|l| Lang::from_code(l))
            .or_else(|| env.get("HTTP_COOKIE").and_then(|c| cookie_lang(c)))
            .unwrap_or(Lang::En)
    }
}

/// A request that could not be read; carries what is known for the error page.
#[derive(Debug)]
pub struct Rejected {
    pub error: PanelError,
    pub lang: Lang,
    pub func: Option<String>,
}

/// A parsed panel request.
#[derive(Clone, Debug)]
pub struct Request {
    func: String,
    params: BTreeMap<String, String>,
    user: Option<String>,
    level: Option<u32>,
    lang: Lang,
    doc: Option<Element>,
    whole_lists: bool,
}

/// Paging and sorting of a list, validated against the list's columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paging {
    /// 1-based page number.
    pub page: u64,
    /// Rows per page.
    pub count: u64,
    /// Sort column, one of the list's sortable columns.
    pub sort: Option<String>,
    pub descending: bool,
    /// Every row (up to [`PANEL_ROWS`]) for a caller that pages itself;
    /// `page` and `count` are then only echoed.
    pub whole: bool,
    /// The paging parameters the request gave, echoed as they came when
    /// `whole`.
    pub given: Vec<&'static str>,
}

impl Paging {
    /// The first row to return.
    pub fn offset(&self) -> u64 {
        if self.whole {
            0
        } else {
            (self.page - 1) * self.count
        }
    }

    /// How many rows to return at most.
    pub fn limit(&self) -> u64 {
        if self.whole {
            PANEL_ROWS
        } else {
            self.count
        }
    }
}

impl Request {
    /// Reads a request from the environment and stdin.
    ///
    /// # Errors
    /// `toolarge` for stdin over [`MAX_STDIN`], `xml` for a document that is
    /// not well-formed, `toolong` for a value over [`MAX_VALUE`].
    pub fn parse(incoming: &Incoming) -> Result<Request, Rejected> {
        let env = &incoming.env;
        let mut params: BTreeMap<String, String> = env
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("PARAM_").map(|n| (n.to_string(), v.clone())))
            .collect();
        // Language is settled first so that even a broken document gets an
        // error in the user's language.
        let cookie_lang = env.get("HTTP_COOKIE").and_then(|c| cookie_lang(c));
        let early_lang = Incoming::lang_hint(env);
        // The function as the environment names it; once the document's
        // <tparams> are merged in, again (they may name it too).
        let named = |params: &BTreeMap<String, String>| {
            params
                .get("func")
                .or_else(|| env.get("ACTION_NAME"))
                .filter(|f| !f.is_empty())
                .cloned()
        };
        let early_func = named(&params);
        let reject =
            |error: PanelError, lang: Lang, func: Option<String>| Rejected { error, lang, func };

        if incoming.stdin.len() > MAX_STDIN {
            return Err(reject(
                PanelError::new(
                    ErrorKind::TooLarge,
                    "stdin",
                    incoming.stdin.len().to_string(),
                ),
                early_lang,
                early_func,
            ));
        }
        let doc = if incoming.stdin.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            let text = std::str::from_utf8(&incoming.stdin).map_err(|e| {
                reject(
                    PanelError::new(ErrorKind::Xml, "stdin", format!("not UTF-8: {e}")),
                    early_lang,
                    early_func.clone(),
                )
            })?;
            let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
            Some(Element::parse(text).map_err(|e| {
                reject(
                    PanelError::new(ErrorKind::Xml, "stdin", e.0),
                    early_lang,
                    early_func.clone(),
                )
            })?)
        };

        if let Some(tparams) = doc.as_ref().and_then(|d| d.find("tparams")) {
            for p in tparams.elements() {
                params
                    .entry(p.name.clone())
                    .or_insert_with(|| p.text_content());
            }
        }
        let lang = params
            .get("lang")
            .and_then(|l| Lang::from_code(l))
            .or_else(|| {
                doc.as_ref()
                    .and_then(|d| d.get_attr("lang"))
                    .and_then(Lang::from_code)
            })
            .or(cookie_lang)
            .unwrap_or(Lang::En);
        let func = named(&params)
            .or_else(|| {
                doc.as_ref()
                    .and_then(|d| d.get_attr("func"))
                    .map(str::to_string)
            })
            .unwrap_or_default();

        if let Some((name, value)) = params.iter().find(|(_, v)| v.len() > MAX_VALUE) {
            return Err(reject(
                PanelError::new(
                    ErrorKind::TooLong,
                    name.clone(),
                    format!("{} bytes", value.len()),
                ),
                lang,
                Some(func),
            ));
        }
        let level = match env.get("AUTH_LEVEL").map(|l| l.trim()) {
            None | Some("") => None,
            Some(l) => Some(l.parse::<u32>().map_err(|_| {
                reject(PanelError::value("AUTH_LEVEL", l), lang, Some(func.clone()))
            })?),
        };
        Ok(Request {
            func,
            params,
            user: env.get("AUTH_USER").filter(|u| !u.is_empty()).cloned(),
            level,
            lang,
            doc,
            whole_lists: incoming.whole_lists,
        })
    }

    /// Who made the call, for the log: `AUTH_USER`, or `?`.
    pub fn actor(&self) -> &str {
        self.user().unwrap_or("?")
    }

    pub fn func(&self) -> &str {
        &self.func
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn level(&self) -> Option<u32> {
        self.level
    }

    /// The stdin document, if one was sent.
    pub fn doc(&self) -> Option<&Element> {
        self.doc.as_ref()
    }

    /// The incoming document, moved out (for the answer built on it).
    pub fn take_doc(&mut self) -> Option<Element> {
        self.doc.take()
    }

    /// A parameter's value; an empty value counts as absent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter that must be present and non-empty.
    pub fn required(&self, name: &str) -> Result<&str, PanelError> {
        self.param(name).ok_or_else(|| PanelError::empty(name))
    }

    /// A required positive integer id.
    pub fn id(&self, name: &str) -> Result<u64, PanelError> {
        parse_id(name, self.required(name)?)
    }

    /// The one selected element.
    pub fn elid(&self) -> Result<u64, PanelError> {
        self.id("elid")
    }

    /// The selected elements of a group action, split on ", " as the panel
    /// joins them; duplicates are dropped, order is kept.
    pub fn elids(&self) -> Result<Vec<u64>, PanelError> {
        self.required("elid")?;
        self.ids_split("elid", ", ")
    }

    /// The ids chosen in a multiple select (comma-separated); none when
    /// absent.
    pub fn ids_in(&self, name: &str) -> Result<Vec<u64>, PanelError> {
        self.ids_split(name, ",")
    }

    fn ids_split(&self, name: &str, separator: &str) -> Result<Vec<u64>, PanelError> {
        let mut ids = Vec::new();
        let raw = self.param(name).unwrap_or("");
        let raw = if separator == "," { raw.trim() } else { raw };
        if raw.is_empty() {
            return Ok(ids);
        }
        for part in raw.split(separator) {
            let part = if separator == "," { part.trim() } else { part };
            let id = parse_id(name, part)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// An optional number with bounds.
    pub fn number(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, PanelError> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(PanelError::value(name, v)),
            },
        }
    }

    /// An optional text of at most `max` characters ("" when absent).
    pub fn text(&self, name: &str, max: usize) -> Result<&str, PanelError> {
        let v = self.param(name).unwrap_or("");
        let len = v.chars().count();
        if len > max {
            return Err(PanelError::toolong(name, len));
        }
        Ok(v)
    }

    /// An optional value that must be one of `allowed`.
    pub fn choice(&self, name: &str, allowed: &[&str]) -> Result<Option<&str>, PanelError> {
        match self.param(name) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v)),
            Some(v) => Err(PanelError::value(name, v)),
        }
    }

    /// An optional positive id.
    pub fn opt_id(&self, name: &str) -> Result<Option<u64>, PanelError> {
        self.param(name).map(|v| parse_id(name, v)).transpose()
    }

    /// An optional date, `YYYY-MM-DD`.
    pub fn date(&self, name: &str) -> Result<Option<&str>, PanelError> {
        let Some(v) = self.param(name) else {
            return Ok(None);
        };
        let b = v.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        let month = v.get(5..7).and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
        let day = v
            .get(8..10)
            .and_then(|d| d.parse::<u32>().ok())
            .unwrap_or(0);
        if shape && (1..=12).contains(&month) && (1..=31).contains(&day) {
            Ok(Some(v))
        } else {
            Err(PanelError::value(name, v))
        }
    }

    /// How the call is classified (see [`Mode`]).
    pub fn mode(&self) -> Mode {
        if self.param("sok").is_some() {
            if self.param("elid").is_some() {
                Mode::SubmitEdit
            } else {
                Mode::SubmitNew
            }
        } else if self.param("sv_field").is_some() {
            Mode::SetValues
        } else {
            Mode::View
        }
    }

    /// `p_num`, `p_cnt`, `p_sort`, `p_order`, checked against the sortable
    /// columns of a list. `p_sort` may carry the panel's direction prefix.
    pub fn paging(&self, sortable: &[&str]) -> Result<Paging, PanelError> {
        let page = self.number("p_num", 1, u32::MAX as u64)?.unwrap_or(1);
        let count = self.number("p_cnt", 1, MAX_PAGE)?.unwrap_or(DEFAULT_PAGE);
        let mut descending = match self.param("p_order") {
            None => false,
            Some(o) => match o.to_ascii_lowercase().as_str() {
                "asc" => false,
                "desc" => true,
                _ => return Err(PanelError::value("p_order", o)),
            },
        };
        let sort = match self.param("p_sort") {
            None => None,
            Some(raw) => {
                // COREmanager may send "-col"/"+col" for the direction.
                let name = if let Some(n) = raw.strip_prefix('-') {
                    descending = true;
                    n
                } else {
                    raw.strip_prefix('+').unwrap_or(raw)
                };
                if !sortable.contains(&name) {
                    return Err(PanelError::value("p_sort", raw));
                }
                Some(name.to_string())
            }
        };
        let given = ["p_num", "p_cnt", "p_sort", "p_order"]
            .into_iter()
            .filter(|p| self.param(p).is_some())
            .collect();
        Ok(Paging {
            page,
            count,
            sort,
            descending,
            whole: self.whole_lists,
            given,
        })
    }
}

fn parse_id(name: &str, raw: &str) -> Result<u64, PanelError> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PanelError::value(name, raw));
    }
    match t.parse::<u64>() {
        Ok(0) | Err(_) => Err(PanelError::value(name, raw)),
        Ok(n) => Ok(n),
    }
}

/// The language of the `billmgrlang5=<mgr>:<lang>` cookie.
fn cookie_lang(cookie: &str) -> Option<Lang> {
    cookie.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        if name != "billmgrlang5" {
            return None;
        }
        let value = value.replace("%3A", ":").replace("%3a", ":");
        Lang::from_code(value.rsplit(':').next()?)
    })
}

#[cfg(test)]
mod tests;
