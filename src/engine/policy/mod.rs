//! Pure rules over time, with `now` as an argument: when a plan is due
//! ([`schedule`]) and which copies a plan keeps ([`retention`]).

pub mod retention;
pub mod schedule;
