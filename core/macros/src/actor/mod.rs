//! `#[raya::actor]`: on a struct (or enum) it implements `raya::Actor` with the default options
//! given on the attribute; on the `impl` block it registers the constructor and turns every
//! `&self` / `&mut self` method into a message. [`parse`] reads and checks both; [`generate`]
//! writes the items.

mod generate;
mod parse;

pub(crate) use parse::{ActorImpl, ActorType};
