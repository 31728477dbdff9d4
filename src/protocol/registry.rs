//! What the protocol needs to know of a panel function: its name, who may
//! call it, what it shows, and its handler. The table itself
//! (`functions::FUNCTIONS`) is given to [`super::handle`] by the caller, so
//! the protocol depends on nothing above it.

use anyhow::Result;

use super::{Reply, Request};
use crate::context::Ctx;

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
