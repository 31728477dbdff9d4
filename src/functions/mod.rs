//! The registry of panel functions: name, access level, kind and handler.
//!
//! One table, [`FUNCTIONS`], is the whole list. A test walks it against the
//! manifests in xml/ and fails on a function missing on either side or
//! missing its en or ru texts. Handlers are thin glue: read the request
//! through its typed accessors (all validation before the database is
//! touched), call one db/engine/runner function, build a [`Reply`].

mod runningoperation;

use anyhow::Result;

use crate::context::Ctx;
use crate::db::Page;
use crate::protocol::{Paging, Reply, Request};

/// Who may call a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// AUTH_LEVEL at or above the configured admin level.
    Admin,
}

/// What a function shows, as its manifest metadata says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    List,
    Form,
    Action,
}

/// A handler: one request in, one reply out.
pub type Handler = fn(&Request, &mut Ctx<'_>) -> Result<Reply>;

/// One registered panel function.
pub struct Function {
    pub name: &'static str,
    pub access: Access,
    pub kind: Kind,
    pub run: Handler,
}

/// Every function the plugin implements.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "runningoperation",
        access: Access::Admin,
        kind: Kind::List,
        run: runningoperation::list,
    },
    Function {
        name: "runningoperation.errorhistory",
        access: Access::Admin,
        kind: Kind::List,
        run: runningoperation::errorhistory,
    },
];

/// The function registered under `name`.
pub fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The names of a sort whitelist, for [`Request::paging`].
fn sort_keys(sorts: &[(&'static str, &'static str)]) -> Vec<&'static str> {
    sorts.iter().map(|(k, _)| *k).collect()
}

/// The database page for validated protocol paging.
fn db_page(paging: &Paging) -> Page<'_> {
    Page {
        offset: paging.offset(),
        limit: paging.count,
        sort: paging.sort.as_deref(),
        descending: paging.descending,
    }
}
